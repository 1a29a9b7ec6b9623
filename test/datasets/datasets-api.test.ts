/**
 * Evaluation datasets as their users meet them (issue 14): test cases created, listed, read a page
 * at a time and appended to over REST (/datasets…) and GraphQL (datasets, dataset, dataset_items,
 * create_dataset, add_dataset_items), shared by every caller, at most 10,000 cases each, with
 * concurrent appends that never collide or leave gaps. Against the embedded SQLite ledger and a real
 * PostgreSQL, through the real gateway; every REST answer is checked against the contract.
 */
import { openDatabase } from '../../src/storage/database';
import { DatasetRepository } from '../../src/storage/dataset-repository';
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import {
  ADMIN_KEY,
  bearer,
  FILE_KEYS,
  type LedgerSetup,
  postgresLedgerSetup,
  type Query,
  sqliteLedgerSetup,
  withQuery,
  writeKeysFile,
} from '../support/ledger-fixtures';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const { alice, bob, carol } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);
const asAlice = bearer(alice.key); // member
const asBob = bearer(bob.key); // member
const asCarol = bearer(carol.key); // admin from the file

interface Dataset {
  id: string;
  name: string;
  description: string | null;
  item_count: number;
  created_at: string;
}

interface Item {
  index: number;
  variables: Record<string, string>;
  expected: string | null;
}

interface ItemPage {
  items: Item[];
  next_cursor: string | null;
}

type ItemInput = { variables: Record<string, unknown>; expected?: unknown };

type ContractPath = '/datasets' | '/datasets/{dataset_id}' | '/datasets/{dataset_id}/items';

const DATASET_FIELDS = 'id name description item_count created_at';
const createMutation = `mutation ($name: String!, $description: String, $items: [DatasetItemInput!]!) {
  create_dataset(name: $name, description: $description, items: $items) { ${DATASET_FIELDS} }
}`;
const appendMutation = `mutation ($dataset_id: String!, $items: [DatasetItemInput!]!) {
  add_dataset_items(dataset_id: $dataset_id, items: $items) { ${DATASET_FIELDS} }
}`;
const itemsQuery = `query ($dataset_id: String!, $limit: Int, $cursor: String) {
  dataset_items(dataset_id: $dataset_id, limit: $limit, cursor: $cursor) { items { index variables expected } next_cursor }
}`;

/** `count` small cases, each naming its batch and position. */
const cases = (count: number, batch: string): ItemInput[] =>
  Array.from({ length: count }, (_, position) => ({ variables: { batch, position: String(position) }, expected: `${position}` }));

/** Resolves once the clock has moved past `time`: datasets made after it sort after it. */
async function nextMillisecond(time: number): Promise<void> {
  while (Date.now() <= time) await new Promise((resolve) => setImmediate(resolve));
}

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('evaluation datasets on $name', (setup) => {
  let gateway: RunningGateway;
  let databaseSettings: Awaited<ReturnType<LedgerSetup['freshLedger']>>['settings'];

  const call = async (
    method: 'get' | 'post',
    pathname: string,
    contractPath: ContractPath,
    body?: unknown,
    headers: Record<string, string> = asAdmin,
  ): Promise<RestResponse> => {
    const response = await rest(gateway, method.toUpperCase(), pathname, body, headers);
    expectToMatchContract(response, contractPath, method);
    return response;
  };
  const createOk = async (body: Record<string, unknown>, headers: Record<string, string> = asAdmin): Promise<Dataset> => {
    const response = await call('post', '/datasets', '/datasets', body, headers);
    expect([response.status, response.body.error, response.body.details]).toEqual([201, undefined, undefined]);
    return response.body as Dataset;
  };
  const append = (datasetId: string, items: unknown, headers: Record<string, string> = asAdmin) =>
    call('post', `/datasets/${encodeURIComponent(datasetId)}/items`, '/datasets/{dataset_id}/items', { items }, headers);
  const appendOk = async (datasetId: string, items: unknown, headers: Record<string, string> = asAdmin): Promise<Dataset> => {
    const response = await append(datasetId, items, headers);
    expect([response.status, response.body.error, response.body.details]).toEqual([200, undefined, undefined]);
    return response.body as Dataset;
  };
  const itemPage = (datasetId: string, query: Query = {}, headers: Record<string, string> = asAdmin) =>
    call('get', withQuery(`/datasets/${encodeURIComponent(datasetId)}/items`, query), '/datasets/{dataset_id}/items', undefined, headers);
  const getDataset = async (datasetId: string): Promise<Dataset> => {
    const response = await call('get', `/datasets/${encodeURIComponent(datasetId)}`, '/datasets/{dataset_id}');
    expect(response.status).toBe(200);
    return response.body as Dataset;
  };
  const listDatasets = async (headers: Record<string, string> = asAdmin): Promise<Dataset[]> => {
    const response = await call('get', '/datasets', '/datasets', undefined, headers);
    expect(response.status).toBe(200);
    return (response.body as { datasets: Dataset[] }).datasets;
  };
  /** Every item, walking the pages over REST; the cursors seen along the way. */
  const allItems = async (datasetId: string, limit = 200): Promise<{ items: Item[]; pages: number }> => {
    const items: Item[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await itemPage(datasetId, { limit, cursor: cursor ?? undefined });
      expect(response.status).toBe(200);
      const page = response.body as ItemPage;
      items.push(...page.items);
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== null);
    return { items, pages };
  };
  const expectIndicesFromZero = (items: readonly Item[], count: number) => {
    expect(items.map((item) => item.index)).toEqual(Array.from({ length: count }, (_, index) => index));
  };

  beforeAll(async () => {
    await setup.setUp();
    const ledger = await setup.freshLedger();
    databaseSettings = ledger.settings;
    gateway = await startGateway({
      env: { ...ledger.env, API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([alice, bob, carol]) },
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    await setup.tearDown();
  }, 60_000);

  it('creates datasets over REST (201) and GraphQL, shared by every caller: listed newest first and read by id', async () => {
    const before = Date.now();
    const first = await createOk(
      {
        name: 'support-tickets',
        items: [
          { variables: { ticket: 'My reset link expired', tone: 'calm' }, expected: 'Send a new link' },
          { variables: { ticket: 'Ünïcödé ✓ and "quotes"\nnew line', 'odd key.name-1': '' } },
          { variables: {} },
        ],
      },
      asAlice,
    );
    expect(first).toEqual({
      id: expect.stringMatching(/^ds_[0-9a-z]{26}$/),
      name: 'support-tickets',
      description: null,
      item_count: 3,
      created_at: expect.any(String),
    });
    expect(new Date(first.created_at).getTime()).toBeGreaterThanOrEqual(before - 1);
    await nextMillisecond(new Date(first.created_at).getTime());

    // Another member, over GraphQL.
    const second = await gateway.graphql(
      createMutation,
      { name: 'math', description: 'Arithmetic with exact answers', items: cases(2, 'math') },
      asBob,
    );
    expect(second.body.errors).toBeUndefined();
    const math = second.body.data.create_dataset as Dataset;
    expect(math).toMatchObject({ name: 'math', description: 'Arithmetic with exact answers', item_count: 2 });

    // Every caller sees both, newest first.
    for (const headers of [asAlice, asBob, asCarol, asAdmin]) {
      const listed = await listDatasets(headers);
      expect(listed.findIndex((dataset) => dataset.id === math.id)).toBeLessThan(listed.findIndex((dataset) => dataset.id === first.id));
      expect(listed).toContainEqual(first);
      expect(listed).toContainEqual(math);
      const order = listed.map((dataset) => [new Date(dataset.created_at).getTime(), dataset.id] as const);
      expect(order).toEqual([...order].sort((left, right) => right[0] - left[0] || (right[1] > left[1] ? 1 : -1)));
    }
    const viaGraphql = await gateway.graphql(`{ datasets { datasets { ${DATASET_FIELDS} } } }`, {}, asBob);
    expect(viaGraphql.body.data.datasets.datasets).toEqual(await listDatasets());

    expect(await getDataset(first.id)).toEqual(first);
    const one = await gateway.graphql(`query ($id: String!) { dataset(dataset_id: $id) { ${DATASET_FIELDS} } }`, { id: first.id }, asBob);
    expect(one.body.data.dataset).toEqual(first);

    // The cases come back exactly as given; a case without `expected` has null.
    const page = (await itemPage(first.id, {}, asCarol)).body as ItemPage;
    expect(page).toEqual({
      items: [
        { index: 0, variables: { ticket: 'My reset link expired', tone: 'calm' }, expected: 'Send a new link' },
        { index: 1, variables: { ticket: 'Ünïcödé ✓ and "quotes"\nnew line', 'odd key.name-1': '' }, expected: null },
        { index: 2, variables: {}, expected: null },
      ],
      next_cursor: null,
    });
  });

  it('pages the items in index order with cursors that never repeat or skip; REST and GraphQL agree', async () => {
    const dataset = await createOk({ name: 'paged', items: cases(120, 'paged') });
    const sizes: number[] = [];
    const seen: Item[] = [];
    let cursor: string | null = null;
    do {
      const response = await itemPage(dataset.id, { limit: 50, cursor: cursor ?? undefined });
      expect(response.status).toBe(200);
      const page = response.body as ItemPage;
      const viaGraphql = await gateway.graphql(itemsQuery, { dataset_id: dataset.id, limit: 50, cursor }, asBob);
      expect(viaGraphql.body.data.dataset_items).toEqual(page);
      sizes.push(page.items.length);
      seen.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor !== null);
    expect(sizes).toEqual([50, 50, 20]);
    expectIndicesFromZero(seen, 120);
    expect(seen.map((item) => item.variables)).toEqual(cases(120, 'paged').map((item) => item.variables));
    expect(seen[119]!.expected).toBe('119');

    // The default page is 50; a page that ends exactly at the last item says so.
    const first = (await itemPage(dataset.id)).body as ItemPage;
    expect([first.items.length, typeof first.next_cursor]).toEqual([50, 'string']);
    const exact = (await itemPage(dataset.id, { limit: 120 })).body as ItemPage;
    expect([exact.items.length, exact.next_cursor]).toEqual([120, null]);
  });

  it('appends after the last item over REST (200) and GraphQL, and answers the dataset with its new count', async () => {
    const dataset = await createOk({ name: 'growing', description: 'grows', items: cases(3, 'created') });
    const afterRest = await appendOk(dataset.id, cases(2, 'rest'), asAlice);
    expect(afterRest).toEqual({ ...dataset, item_count: 5 });
    const viaGraphql = await gateway.graphql(appendMutation, { dataset_id: dataset.id, items: cases(4, 'graphql') }, asBob);
    expect(viaGraphql.body.errors).toBeUndefined();
    expect(viaGraphql.body.data.add_dataset_items).toEqual({ ...dataset, item_count: 9 });
    expect(await getDataset(dataset.id)).toEqual({ ...dataset, item_count: 9 });

    const { items } = await allItems(dataset.id, 4);
    expectIndicesFromZero(items, 9);
    expect(items.map((item) => `${item.variables.batch}/${item.variables.position}`)).toEqual([
      'created/0',
      'created/1',
      'created/2',
      'rest/0',
      'rest/1',
      'graphql/0',
      'graphql/1',
      'graphql/2',
      'graphql/3',
    ]);
  });

  it('creates a dataset of 10,000 items in one request, and refuses an append beyond 10,000 with 400 naming the limit, adding nothing', async () => {
    const items = cases(10_000, 'full');
    expect(JSON.stringify({ name: 'full', items }).length).toBeLessThan(1_048_576); // under the default MAX_BODY_BYTES
    const started = performance.now();
    const full = await createOk({ name: 'full', items });
    const elapsedMs = performance.now() - started;
    expect(full.item_count).toBe(10_000);
    expect(elapsedMs).toBeLessThan(5000);

    const refused = await append(full.id, cases(1, 'one too many'));
    expect([refused.status, refused.body.error]).toEqual([400, 'validation_error']);
    expect(refused.body.message).toContain('10000');
    expect(refused.body.details).toContain('at most 0 more fit');

    const walked = await allItems(full.id);
    expect(walked.pages).toBe(50);
    expectIndicesFromZero(walked.items, 10_000);
    expect(walked.items.every((item) => item.variables.batch === 'full' && item.variables.position === String(item.index))).toBe(true);

    // Near the limit: what does not fit is refused whole; what fits exactly is accepted.
    const nearly = await createOk({ name: 'nearly full', items: cases(9_990, 'nearly') });
    const tooMany = await append(nearly.id, cases(11, 'over'));
    expect([tooMany.status, tooMany.body.error]).toEqual([400, 'validation_error']);
    expect(tooMany.body.details).toBe(`dataset ${nearly.id} has 9990 items, so at most 10 more fit, not 11: nothing was added`);
    const graphqlTooMany = await gateway.graphql(appendMutation, { dataset_id: nearly.id, items: cases(11, 'over') }, asAdmin);
    expect(graphqlTooMany.body.errors?.[0]?.extensions?.code).toBe('validation_error');
    expect((await getDataset(nearly.id)).item_count).toBe(9_990);
    expect((await appendOk(nearly.id, cases(10, 'last'))).item_count).toBe(10_000);
    const tail = (await itemPage(nearly.id, { limit: 200 })).body as ItemPage;
    expect(tail.items[0]!.index).toBe(0);
    const everything = await allItems(nearly.id);
    expectIndicesFromZero(everything.items, 10_000);
    expect(everything.items.slice(9_989).map((item) => item.variables.batch)).toEqual(['nearly', ...Array(10).fill('last')]);
  }, 60_000);

  it('keeps concurrent appends exact: 20 parallel appends of 50 get indices 1..1000 once each, every append contiguous', async () => {
    const dataset = await createOk({ name: 'concurrent', items: cases(1, 'seed') });
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, append) => {
        const items = cases(50, `append-${append}`);
        if (append % 2 === 0) return appendOk(dataset.id, items, asAlice);
        const viaGraphql = await gateway.graphql(appendMutation, { dataset_id: dataset.id, items }, asBob);
        expect(viaGraphql.body.errors).toBeUndefined();
        return viaGraphql.body.data.add_dataset_items as Dataset;
      }),
    );
    // Each answer is the count its own append left: 51, 101, … 1001, each once.
    expect(answers.map((answer) => answer.item_count).sort((left, right) => left - right)).toEqual(
      Array.from({ length: 20 }, (_, position) => 1 + 50 * (position + 1)),
    );
    const { items } = await allItems(dataset.id);
    expectIndicesFromZero(items, 1001);
    for (let append = 0; append < 20; append += 1) {
      const own = items.filter((item) => item.variables.batch === `append-${append}`);
      expect(own.map((item) => item.variables.position)).toEqual(Array.from({ length: 50 }, (_, position) => String(position)));
      expect(own.map((item) => item.index - own[0]!.index)).toEqual(Array.from({ length: 50 }, (_, position) => position));
      expect(own[0]!.index % 50).toBe(1);
    }
  }, 60_000);

  it('lets concurrent appends race for the last room: exactly those that fit are added, the others refused whole', async () => {
    const dataset = await createOk({ name: 'racing', items: cases(9_900, 'base') });
    const answers = await Promise.all(Array.from({ length: 5 }, (_, racer) => append(dataset.id, cases(50, `race-${racer}`))));
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 200, 400, 400, 400]);
    for (const refused of answers.filter((answer) => answer.status === 400)) {
      expect(refused.body.details).toBe(`dataset ${dataset.id} has 10000 items, so at most 0 more fit, not 50: nothing was added`);
    }
    expect((await getDataset(dataset.id)).item_count).toBe(10_000);
    const { items } = await allItems(dataset.id);
    expectIndicesFromZero(items, 10_000);
    const winners = new Set(items.slice(9_900).map((item) => item.variables.batch));
    expect(winners.size).toBe(2);
  }, 60_000);

  it('refuses bad input with 400 validation_error naming the field, and stores nothing', async () => {
    const datasetsBefore = (await listDatasets()).length;
    const fine = cases(1, 'fine');
    const refusedCreates: Array<[string, unknown, string]> = [
      ['no name', { items: fine }, 'name'],
      ['an empty name', { name: '', items: fine }, 'name: 1 to 200 characters, got 0'],
      ['a name of 201 characters', { name: 'n'.repeat(201), items: fine }, 'name: 1 to 200 characters, got 201'],
      ['a description of 2001 characters', { name: 'd', description: 'd'.repeat(2001), items: fine }, 'description: at most 2000'],
      ['no items', { name: 'empty' }, 'items'],
      ['an empty list of items', { name: 'empty', items: [] }, 'items: 1 to 10000 items, got 0'],
      ['10,001 items', { name: 'big', items: cases(10_001, 'big') }, 'items: 1 to 10000 items, got 10001'],
      ['variables that are a string', { name: 'v', items: [{ variables: 'question' }] }, 'variables'],
      ['variables that are an array', { name: 'v', items: [{ variables: ['a'] }] }, 'variables'],
      ['an item without variables', { name: 'v', items: [{ expected: 'x' }] }, 'variables'],
      [
        'a variable that is a number',
        { name: 'v', items: [...fine, { variables: { n: 1 } }] },
        'items[1].variables.n: must be a string, got a number',
      ],
      ['a variable that is null', { name: 'v', items: [{ variables: { n: null } }] }, 'items[0].variables.n: must be a string, got null'],
      ['a variable that is an object', { name: 'v', items: [{ variables: { n: { deep: 'x' } } }] }, 'got an object'],
      [
        'an expected answer of 100,001 characters',
        { name: 'e', items: [{ variables: {}, expected: 'e'.repeat(100_001) }] },
        'items[0].expected: at most 100000',
      ],
      ['an expected answer that is a number', { name: 'e', items: [{ variables: {}, expected: 4 }] }, 'expected'],
    ];
    for (const [what, body, named] of refusedCreates) {
      const response = await call('post', '/datasets', '/datasets', body);
      expect({ what, status: response.status, error: response.body.error }).toEqual({ what, status: 400, error: 'validation_error' });
      expect({ what, said: `${response.body.message} ${response.body.details ?? ''}` }).toEqual({
        what,
        said: expect.stringContaining(named),
      });
    }
    const notJson = await call('post', '/datasets', '/datasets', '{"name": "broken"');
    expect([notJson.status, notJson.body.error]).toEqual([400, 'validation_error']);
    const graphql = await gateway.graphql(createMutation, { name: '', items: fine }, asAdmin);
    expect(graphql.body.errors?.[0]?.extensions).toMatchObject({ code: 'validation_error', details: 'name: 1 to 200 characters, got 0' });
    expect((await listDatasets()).length).toBe(datasetsBefore);

    // The bounds themselves are accepted.
    const bounds = await createOk({
      name: 'n'.repeat(200),
      description: 'd'.repeat(2000),
      items: [
        { variables: {}, expected: 'e'.repeat(100_000) },
        { variables: { only: '' }, expected: '' },
      ],
    });
    expect(bounds.item_count).toBe(2);

    const refusedAppends: Array<[string, unknown, string]> = [
      ['no items', [], 'items: 1 to 1000 items, got 0'],
      ['1001 items', cases(1001, 'big'), 'items: 1 to 1000 items, got 1001'],
      ['a variable that is a boolean', [{ variables: { yes: true } }], 'items[0].variables.yes: must be a string, got a boolean'],
      ['variables that are null', [{ variables: null }], 'variables'],
    ];
    for (const [what, items, named] of refusedAppends) {
      const response = await append(bounds.id, items);
      expect({ what, status: response.status, error: response.body.error }).toEqual({ what, status: 400, error: 'validation_error' });
      expect({ what, said: `${response.body.message} ${response.body.details ?? ''}` }).toEqual({
        what,
        said: expect.stringContaining(named),
      });
    }
    expect((await appendOk(bounds.id, cases(1000, 'most'))).item_count).toBe(1002);

    for (const query of [{ limit: 0 }, { limit: 201 }, { limit: 'many' }, { cursor: 'not-a-cursor' }, { cursor: 'aXRlbTowMDE' }]) {
      const response = await itemPage(bounds.id, query);
      expect({ query, status: response.status, error: response.body.error }).toEqual({ query, status: 400, error: 'validation_error' });
    }
    const forged = await gateway.graphql(
      itemsQuery,
      { dataset_id: bounds.id, cursor: Buffer.from('item:x').toString('base64url') },
      asAdmin,
    );
    expect(forged.body.errors?.[0]?.extensions?.code).toBe('validation_error');
  }, 60_000);

  it('answers 404 dataset_not_found for an unknown dataset: get, items and append, over REST and GraphQL', async () => {
    const missing = 'ds_00000000000000000000000000';
    for (const response of [
      await call('get', `/datasets/${missing}`, '/datasets/{dataset_id}'),
      await itemPage(missing),
      await append(missing, cases(1, 'lost')),
    ]) {
      expect([response.status, response.body.error, response.body.message]).toEqual([
        404,
        'dataset_not_found',
        `Dataset "${missing}" was not found`,
      ]);
    }
    for (const [document, variables] of [
      [`query ($id: String!) { dataset(dataset_id: $id) { id } }`, { id: missing }],
      [itemsQuery, { dataset_id: missing }],
      [appendMutation, { dataset_id: missing, items: cases(1, 'lost') }],
    ] as const) {
      const result = await gateway.graphql(document, variables, asAdmin);
      expect(result.body.errors?.[0]?.extensions?.code).toBe('dataset_not_found');
    }
    expect((await listDatasets()).some((dataset) => dataset.id === missing)).toBe(false);
  });

  it('answers 413 payload_too_large for a create body over MAX_BODY_BYTES, and 401 without a key', async () => {
    const tooLarge = await call('post', '/datasets', '/datasets', {
      name: 'huge',
      items: [{ variables: { text: 'x'.repeat(1_100_000) } }],
    });
    expect([tooLarge.status, tooLarge.body.error]).toEqual([413, 'payload_too_large']);
    const unauthenticated = await call('get', '/datasets', '/datasets', undefined, {});
    expect([unauthenticated.status, unauthenticated.body.error]).toEqual([401, 'unauthorized']);
  });

  it('serves the evaluation runner from the repository: a dataset and its items from any index', async () => {
    const created = await createOk({ name: 'for the runner', description: 'direct reads', items: cases(12, 'runner') });
    const database = await openDatabase(databaseSettings);
    try {
      const repository = new DatasetRepository(database);
      const dataset = await repository.get(created.id);
      expect(dataset).toEqual({
        id: created.id,
        name: 'for the runner',
        description: 'direct reads',
        itemCount: 12,
        createdAt: new Date(created.created_at),
      });
      const items = await repository.items(created.id, 5, 4);
      expect(items).toEqual(
        [5, 6, 7, 8].map((index) => ({ index, variables: { batch: 'runner', position: String(index) }, expected: String(index) })),
      );
      expect(await repository.items(created.id, 10, 50)).toHaveLength(2);
      expect(await repository.items(created.id, 12, 50)).toEqual([]);
      expect(await repository.get('ds_missing')).toBeUndefined();
    } finally {
      await database.close();
    }
  });
});

describe('evaluation datasets with the ledger off (LEDGER=off)', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { LEDGER: 'off' } });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('answers every dataset operation with 503 ledger_unavailable', async () => {
    const answers: Array<[RestResponse, ContractPath, 'get' | 'post']> = [
      [await rest(gateway, 'GET', '/datasets'), '/datasets', 'get'],
      [await rest(gateway, 'POST', '/datasets', { name: 'off', items: cases(1, 'off') }), '/datasets', 'post'],
      [await rest(gateway, 'GET', '/datasets/ds_x'), '/datasets/{dataset_id}', 'get'],
      [await rest(gateway, 'GET', '/datasets/ds_x/items'), '/datasets/{dataset_id}/items', 'get'],
      [await rest(gateway, 'POST', '/datasets/ds_x/items', { items: cases(1, 'off') }), '/datasets/{dataset_id}/items', 'post'],
    ];
    for (const [response, contractPath, method] of answers) {
      expectToMatchContract(response, contractPath, method);
      expect([response.status, response.body.error]).toEqual([503, 'ledger_unavailable']);
    }
    const viaGraphql = await gateway.graphql(`{ datasets { datasets { id } } }`);
    expect(viaGraphql.body.errors?.[0]?.extensions).toMatchObject({ code: 'ledger_unavailable' });
  });
});
