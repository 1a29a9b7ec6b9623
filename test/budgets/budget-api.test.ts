/**
 * Budget management as its users meet it (issue 12): admins create, read, list, change and remove
 * budgets through REST (/budgets, /budgets/{budget_id}) and GraphQL; members get 403 on
 * management and see only the budgets that apply to their own key (any other one answers exactly
 * like a missing one); bad input is 400 naming the field, a duplicate 409; a new budget's spend
 * counts what the ledger already holds for its period. Run against the embedded SQLite ledger and
 * a real PostgreSQL; then a gateway with the ledger off and one whose database goes away (503).
 */
import { periodOf } from '../../src/storage/budget-periods';
import { contractDocument, expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import {
  ADMIN_KEY,
  bearer,
  CHAT_MODEL,
  COMPLETION_MODEL,
  FILE_KEYS,
  LEDGER_MODELS,
  type LedgerSetup,
  ledgerCatalog,
  postgresLedgerSetup,
  sqliteLedgerSetup,
  writeKeysFile,
} from '../support/ledger-fixtures';
import { startPostgres, type TestPostgres } from '../support/postgres-server';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const { alice, bob, carol } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);
const asAlice = bearer(alice.key); // member, team red
const asBob = bearer(bob.key); // member, no team
const asCarol = bearer(carol.key); // admin from the file, team blue

const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

interface Budget {
  id: string;
  scope: 'global' | 'team' | 'key';
  subject: string | null;
  model_id: string | null;
  limit_usd: number;
  period: 'day' | 'week' | 'month' | 'total';
  spent_usd: number;
  reserved_usd: number;
  remaining_usd: number;
  period_start: string | null;
  resets_at: string | null;
  created_at: string;
}

const BUDGET_FIELDS = 'id scope subject model_id limit_usd period spent_usd reserved_usd remaining_usd period_start resets_at created_at';
const budgetsQuery = `query { budgets { budgets { ${BUDGET_FIELDS} } } }`;
const budgetQuery = `query ($id: String!) { budget(budget_id: $id) { ${BUDGET_FIELDS} } }`;
const createMutation = `mutation ($scope: BudgetScope!, $subject: String, $model_id: String, $limit_usd: Float!, $period: BudgetPeriod!) {
  create_budget(scope: $scope, subject: $subject, model_id: $model_id, limit_usd: $limit_usd, period: $period) { ${BUDGET_FIELDS} }
}`;
const updateMutation = `mutation ($id: String!, $limit_usd: Float!) { update_budget(budget_id: $id, limit_usd: $limit_usd) { ${BUDGET_FIELDS} } }`;
const deleteMutation = 'mutation ($id: String!) { delete_budget(budget_id: $id) }';

type Method = 'get' | 'post' | 'patch' | 'delete';
type BudgetPath = '/budgets' | '/budgets/{budget_id}';

/**
 * expectToMatchContract for every budget method (its type names only GET and POST, the methods the
 * ledger uses; it reads any method of the document). A 204 has no body: the contract documents none.
 */
function expectContract(response: RestResponse, path: BudgetPath, method: Method): void {
  if (response.status === 204) {
    const documented = contractDocument.paths[path]?.[method]?.responses['204'];
    expect(documented).toBeDefined();
    expect(documented?.content).toBeUndefined();
    expect(response.body).toBe('');
    return;
  }
  (expectToMatchContract as (response: RestResponse, path: string, method: Method) => void)(response, path, method);
}

const budgetPath = (id: string): string => `/budgets/${encodeURIComponent(id)}`;

type GraphQLBody = { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
const errorOf = (body: GraphQLBody) => ({ code: body.errors?.[0]?.extensions?.code, details: body.errors?.[0]?.extensions?.details });

/** The period bounds a budget answer should carry for a budget of `period` read at `at`. */
function expectedBounds(period: Budget['period'], at: Date): Pick<Budget, 'period_start' | 'resets_at'> {
  const { start, resetsAt } = periodOf(period, at);
  return { period_start: start?.toISOString() ?? null, resets_at: resetsAt?.toISOString() ?? null };
}

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('budget management on $name', (setup) => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  const call = async (method: Method, path: string, contractPath: BudgetPath, headers: Record<string, string>, body?: unknown) => {
    const response = await rest(gateway, method.toUpperCase(), path, body, headers);
    expectContract(response, contractPath, method);
    return response;
  };
  const create = (body: unknown, headers = asAdmin) => call('post', '/budgets', '/budgets', headers, body);
  const createOk = async (body: Record<string, unknown>): Promise<Budget> => {
    const response = await create(body);
    expect([response.status, response.body]).toEqual([201, expect.objectContaining({ id: expect.any(String) })]);
    return response.body as Budget;
  };
  const read = (id: string, headers = asAdmin) => call('get', budgetPath(id), '/budgets/{budget_id}', headers);
  const list = (headers = asAdmin) => call('get', '/budgets', '/budgets', headers);
  const patch = (id: string, body: unknown, headers = asAdmin) => call('patch', budgetPath(id), '/budgets/{budget_id}', headers, body);
  const remove = (id: string, headers = asAdmin) => call('delete', budgetPath(id), '/budgets/{budget_id}', headers);
  const expectError = (response: RestResponse, status: number, error: string, detailsContaining?: string) => {
    expect({ status: response.status, error: response.body?.error }).toEqual({ status, error });
    if (detailsContaining !== undefined) expect(response.body.details).toContain(detailsContaining);
  };

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const ledger = await setup.freshLedger();
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { ...ledger.env, API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([alice, bob, carol]) },
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
    await setup.tearDown();
  }, 60_000);

  it('creates (201), reads, lists, changes and removes (204, no body) a budget over REST, every answer per the contract', async () => {
    const before = Date.now();
    const created = await createOk({ scope: 'team', subject: 'crud-team', limit_usd: 12.5, period: 'week' });
    const after = Date.now();
    expect(created).toEqual({
      id: expect.stringMatching(/^bud_[0-9a-z]+$/),
      scope: 'team',
      subject: 'crud-team',
      model_id: null,
      limit_usd: 12.5,
      period: 'week',
      spent_usd: 0,
      reserved_usd: 0,
      remaining_usd: 12.5,
      period_start: expect.stringMatching(isoTimestamp),
      resets_at: expect.stringMatching(isoTimestamp),
      created_at: expect.stringMatching(isoTimestamp),
    });
    const createdAt = new Date(created.created_at);
    expect(createdAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(createdAt.getTime()).toBeLessThanOrEqual(after);
    expect(created).toMatchObject(expectedBounds('week', createdAt));

    const got = await read(created.id);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ ...created, ...expectedBounds('week', new Date()) });

    const listed = await list();
    expect(listed.status).toBe(200);
    expect(Object.keys(listed.body)).toEqual(['budgets']);
    expect(listed.body.budgets).toContainEqual(got.body);

    const changed = await patch(created.id, { limit_usd: 20 });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id: created.id, limit_usd: 20, remaining_usd: 20, spent_usd: 0, created_at: created.created_at });
    expect((await read(created.id)).body).toMatchObject({ limit_usd: 20, remaining_usd: 20 });

    const removed = await remove(created.id);
    expect(removed.status).toBe(204);
    expect(removed.headers.get('content-type')).toBeNull();

    expectError(await read(created.id), 404, 'budget_not_found');
    expectError(await patch(created.id, { limit_usd: 1 }), 404, 'budget_not_found');
    expectError(await remove(created.id), 404, 'budget_not_found');
    expect((await list()).body.budgets.map((budget: Budget) => budget.id)).not.toContain(created.id);
  });

  it('manages budgets over GraphQL with the same answers as REST', async () => {
    const created = await gateway.graphql(
      createMutation,
      { scope: 'key', subject: 'graphql-key', model_id: CHAT_MODEL, limit_usd: 3, period: 'day' },
      asAdmin,
    );
    expect(created.body.errors).toBeUndefined();
    const budget: Budget = created.body.data.create_budget;
    expect(budget).toMatchObject({ scope: 'key', subject: 'graphql-key', model_id: CHAT_MODEL, limit_usd: 3, period: 'day', spent_usd: 0 });
    expect(budget).toMatchObject(expectedBounds('day', new Date(budget.created_at)));

    const viaRest = await read(budget.id);
    const viaGraphql = await gateway.graphql(budgetQuery, { id: budget.id }, asAdmin);
    expect(viaGraphql.body.data.budget).toEqual(viaRest.body);

    const all = await gateway.graphql(budgetsQuery, {}, asAdmin);
    expect(all.body.errors).toBeUndefined();
    expect(all.body.data.budgets.budgets.map((entry: Budget) => entry.id)).toContain(budget.id);

    const updated = await gateway.graphql(updateMutation, { id: budget.id, limit_usd: 4.25 }, asAdmin);
    expect(updated.body.data.update_budget).toMatchObject({ id: budget.id, limit_usd: 4.25, remaining_usd: 4.25 });

    const deleted = await gateway.graphql(deleteMutation, { id: budget.id }, asAdmin);
    expect(deleted.body).toEqual({ data: { delete_budget: true } });
    const again = await gateway.graphql(deleteMutation, { id: budget.id }, asAdmin);
    expect(errorOf(again.body).code).toBe('budget_not_found');
    const gone = await gateway.graphql(budgetQuery, { id: budget.id }, asAdmin);
    expect(errorOf(gone.body).code).toBe('budget_not_found');
  });

  it('answers 409 conflict for a second budget with the same scope, subject, model and period, and accepts one that differs', async () => {
    const first = await createOk({ scope: 'team', subject: 'dup-team', limit_usd: 5, period: 'month' });
    const duplicate = await create({ scope: 'team', subject: 'dup-team', limit_usd: 9, period: 'month' });
    expectError(duplicate, 409, 'conflict');
    const graphqlDuplicate = await gateway.graphql(
      createMutation,
      { scope: 'team', subject: 'dup-team', limit_usd: 1, period: 'month' },
      asAdmin,
    );
    expect(errorOf(graphqlDuplicate.body).code).toBe('conflict');

    // Same subject, another period or a model: different budgets.
    await createOk({ scope: 'team', subject: 'dup-team', limit_usd: 5, period: 'day' });
    await createOk({ scope: 'team', subject: 'dup-team', model_id: CHAT_MODEL, limit_usd: 5, period: 'month' });

    // Global budgets have no subject: a second one for the same model and period conflicts (no subject is one subject).
    await createOk({ scope: 'global', model_id: 'dup-model', limit_usd: 5, period: 'total' });
    expectError(await create({ scope: 'global', model_id: 'dup-model', limit_usd: 6, period: 'total' }), 409, 'conflict');

    // The first one is unchanged.
    expect((await read(first.id)).body).toMatchObject({ limit_usd: 5 });
  });

  it('answers 404 budget_not_found for a budget that does not exist (REST and GraphQL)', async () => {
    const missing = 'bud_doesnotexist00000000000000000000';
    const got = await read(missing);
    expectError(got, 404, 'budget_not_found');
    expect(got.body.message).toContain(missing);
    expectError(await patch(missing, { limit_usd: 1 }), 404, 'budget_not_found');
    expectError(await remove(missing), 404, 'budget_not_found');
    expect(errorOf((await gateway.graphql(budgetQuery, { id: missing }, asAdmin)).body).code).toBe('budget_not_found');
    expect(errorOf((await gateway.graphql(updateMutation, { id: missing, limit_usd: 1 }, asAdmin)).body).code).toBe('budget_not_found');
  });

  it('gives members 403 forbidden on listing, creating, changing and removing budgets, and changes nothing; admins from the file manage them', async () => {
    const budget = await createOk({ scope: 'key', subject: 'alice', model_id: 'forbidden-model', limit_usd: 2, period: 'month' });
    for (const headers of [asAlice, asBob]) {
      expectError(await list(headers), 403, 'forbidden');
      expectError(await create({ scope: 'key', subject: 'alice', limit_usd: 100, period: 'day' }, headers), 403, 'forbidden');
      expectError(await patch(budget.id, { limit_usd: 100 }, headers), 403, 'forbidden');
      expectError(await remove(budget.id, headers), 403, 'forbidden');
      expect(errorOf((await gateway.graphql(budgetsQuery, {}, headers)).body).code).toBe('forbidden');
      const graphqlCreate = await gateway.graphql(createMutation, { scope: 'global', limit_usd: 1, period: 'day' }, headers);
      expect(errorOf(graphqlCreate.body).code).toBe('forbidden');
      expect(errorOf((await gateway.graphql(updateMutation, { id: budget.id, limit_usd: 100 }, headers)).body).code).toBe('forbidden');
      expect(errorOf((await gateway.graphql(deleteMutation, { id: budget.id }, headers)).body).code).toBe('forbidden');
    }
    // Nothing changed: still there, same limit, and no day budget for alice was made.
    expect((await read(budget.id)).body).toMatchObject({ limit_usd: 2 });
    const all: Budget[] = (await list()).body.budgets;
    expect(all.filter((entry) => entry.subject === 'alice' && entry.period === 'day')).toEqual([]);

    // carol is an admin from API_KEYS_FILE.
    const changed = await patch(budget.id, { limit_usd: 3 }, asCarol);
    expect([changed.status, changed.body.limit_usd]).toEqual([200, 3]);
    expect((await list(asCarol)).status).toBe(200);
  });

  it('shows a member the budgets that apply to their key (global, their team’s, their own), and answers any other exactly as a missing one', async () => {
    const model = 'visibility-model';
    const mk = (scope: Budget['scope'], subject?: string) =>
      createOk({ scope, ...(subject === undefined ? {} : { subject }), model_id: model, limit_usd: 1, period: 'total' });
    const global = await mk('global');
    const red = await mk('team', 'red');
    const ownKey = await mk('key', 'alice');
    const blue = await mk('team', 'blue');
    const bobs = await mk('key', 'bob');

    for (const budget of [global, red, ownKey]) {
      const response = await read(budget.id, asAlice);
      expect([response.status, response.body]).toEqual([200, budget]);
      const graphql = await gateway.graphql(budgetQuery, { id: budget.id }, asAlice);
      expect(graphql.body.data.budget).toEqual(budget);
    }
    // bob has no team: only the global budget and his own apply.
    expect((await read(global.id, asBob)).status).toBe(200);
    expect((await read(bobs.id, asBob)).status).toBe(200);
    expect((await read(red.id, asBob)).status).toBe(404);

    const raw = async (id: string) => {
      const response = await fetch(`${gateway.url}/api/v1/budgets/${id}`, { headers: asAlice });
      const text = await response.text();
      const body = JSON.parse(text) as { timestamp: string };
      expectContract({ status: response.status, headers: response.headers, body }, '/budgets/{budget_id}', 'get');
      return { status: response.status, contentType: response.headers.get('content-type'), body, text };
    };
    const normalise = (answer: Awaited<ReturnType<typeof raw>>, id: string) => ({
      status: answer.status,
      contentType: answer.contentType,
      text: answer.text.split(answer.body.timestamp).join('<timestamp>').split(id).join('<id>'),
    });
    for (const hidden of [blue, bobs]) {
      // A missing id of the same shape and length.
      const missing = `${hidden.id.slice(0, -1)}${hidden.id.endsWith('0') ? '1' : '0'}`;
      const others = await raw(hidden.id);
      const absent = await raw(missing);
      expect(others.status).toBe(404);
      expect(others.body).toMatchObject({ error: 'budget_not_found' });
      expect(normalise(others, hidden.id)).toEqual(normalise(absent, missing));

      const graphqlOthers = await gateway.graphql(budgetQuery, { id: hidden.id }, asAlice);
      const graphqlAbsent = await gateway.graphql(budgetQuery, { id: missing }, asAlice);
      expect(errorOf(graphqlOthers.body).code).toBe('budget_not_found');
      expect(graphqlOthers.body.errors?.[0]?.message.split(hidden.id).join('<id>')).toBe(
        graphqlAbsent.body.errors?.[0]?.message.split(missing).join('<id>'),
      );
    }
  });

  it('refuses bad input with 400 validation_error naming the field, and rounds a limit to 1e-10 USD', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ scope: 'team', limit_usd: 1, period: 'day' }, 'subject'],
      [{ scope: 'key', subject: '', limit_usd: 1, period: 'day' }, 'subject'],
      [{ scope: 'global', subject: 'someone', limit_usd: 1, period: 'day' }, 'subject'],
      [{ scope: 'team', subject: 'v', limit_usd: -0.01, period: 'day' }, 'limit_usd'],
      [{ scope: 'team', subject: 'v', limit_usd: 'ten', period: 'day' }, 'limit_usd'],
      [{ scope: 'team', subject: 'v', period: 'day' }, 'limit_usd'],
      [{ scope: 'team', subject: 'v', limit_usd: 1e300, period: 'day' }, 'limit_usd'],
      [{ scope: 'planet', subject: 'v', limit_usd: 1, period: 'day' }, 'scope'],
      [{ subject: 'v', limit_usd: 1, period: 'day' }, 'scope'],
      [{ scope: 'team', subject: 'v', limit_usd: 1, period: 'year' }, 'period'],
      [{ scope: 'team', subject: 'v', model_id: '', limit_usd: 1, period: 'day' }, 'model_id'],
    ];
    for (const [body, field] of cases) {
      const response = await create(body);
      expect({ body, status: response.status, error: response.body.error }).toEqual({ body, status: 400, error: 'validation_error' });
      expect({ body, details: response.body.details }).toEqual({ body, details: expect.stringContaining(field) });
    }
    // An overflowing number is not JSON's: 1e999 parses as Infinity, which GraphQL's Float refuses.
    expectError(await create('{"scope":"team","subject":"v","limit_usd":1e999,"period":"day"}'), 400, 'validation_error', 'limit_usd');
    expectError(await create('{"scope":'), 400, 'validation_error');
    expectError(await create('[1]'), 400, 'validation_error');
    expect((await list()).body.budgets.filter((budget: Budget) => budget.subject === 'v')).toEqual([]);

    const graphqlMissingSubject = await gateway.graphql(createMutation, { scope: 'key', limit_usd: 1, period: 'day' }, asAdmin);
    expect(errorOf(graphqlMissingSubject.body)).toEqual({ code: 'validation_error', details: expect.stringContaining('subject') });
    const graphqlNegative = await gateway.graphql(createMutation, { scope: 'key', subject: 'v', limit_usd: -1, period: 'day' }, asAdmin);
    expect(errorOf(graphqlNegative.body)).toEqual({ code: 'validation_error', details: expect.stringContaining('limit_usd') });

    const budget = await createOk({ scope: 'key', subject: 'rounding', limit_usd: 0.123456789012345, period: 'day' });
    expect(budget.limit_usd).toBe(0.123456789);
    expect(budget.remaining_usd).toBe(0.123456789);
    const rounded = await patch(budget.id, { limit_usd: 2.00000000006 });
    expect(rounded.body.limit_usd).toBe(2.0000000001);

    expectError(await patch(budget.id, { limit_usd: -1 }), 400, 'validation_error', 'limit_usd');
    expectError(await patch(budget.id, {}), 400, 'validation_error', 'limit_usd');
    expectError(await patch(budget.id, { limit_usd: 'lots' }), 400, 'validation_error', 'limit_usd');
    expectError(await patch(budget.id, '{'), 400, 'validation_error');
    expect((await read(budget.id)).body.limit_usd).toBe(2.0000000001);
  });

  it('counts the generations already in the ledger in a new budget’s spend, per scope, model and period; month and total bounds', async () => {
    const answer = await rest(gateway, 'POST', '/generate', { prompt: 'spend before the budget', model_id: CHAT_MODEL }, asAlice);
    expectToMatchContract(answer, '/generate', 'post');
    expect(answer.status).toBe(200);
    const cost: number = answer.body.metadata.cost_usd.total;
    expect(cost).toBeGreaterThan(0);
    const generation = await rest(gateway, 'GET', `/generations/${answer.body.metadata.generation_id}`, undefined, asAdmin);
    const generatedAt = new Date(generation.body.created_at);

    const limit = 1000;
    const own = await createOk({ scope: 'key', subject: 'alice', limit_usd: limit, period: 'total' });
    const team = await createOk({ scope: 'team', subject: 'red', model_id: CHAT_MODEL, limit_usd: limit, period: 'total' });
    const otherModel = await createOk({ scope: 'team', subject: 'red', model_id: COMPLETION_MODEL, limit_usd: limit, period: 'total' });
    const otherKey = await createOk({ scope: 'key', subject: 'bob', limit_usd: limit, period: 'total' });
    const month = await createOk({ scope: 'key', subject: 'alice', limit_usd: limit, period: 'month' });

    for (const budget of [own, team]) {
      expect(budget.spent_usd).toBeCloseTo(cost, 10);
      expect(budget.remaining_usd).toBeCloseTo(limit - cost, 10);
      expect(budget.reserved_usd).toBe(0);
      expect({ period_start: budget.period_start, resets_at: budget.resets_at }).toEqual({ period_start: null, resets_at: null });
    }
    for (const budget of [otherModel, otherKey]) expect([budget.spent_usd, budget.remaining_usd]).toEqual([0, limit]);

    // The month containing the budget's creation; the generation counts when it fell in that month too.
    const monthBounds = periodOf('month', new Date(month.created_at));
    expect(month).toMatchObject(expectedBounds('month', new Date(month.created_at)));
    expect(monthBounds.start?.toISOString()).toMatch(/-01T00:00:00\.000Z$/);
    const inMonth = generatedAt >= (monthBounds.start as Date) && generatedAt < (monthBounds.resetsAt as Date);
    expect(month.spent_usd).toBeCloseTo(inMonth ? cost : 0, 10);

    // Reading it back gives the same figures.
    expect((await read(own.id)).body.spent_usd).toBeCloseTo(cost, 10);
  });

  it('answers 405 with every method of the path in Allow', async () => {
    const onList = await rest(gateway, 'PUT', '/budgets', { limit_usd: 1 }, asAdmin);
    expect([onList.status, onList.headers.get('allow')]).toEqual([405, 'GET, POST']);
    const onOne = await rest(gateway, 'POST', '/budgets/some-id', { limit_usd: 1 }, asAdmin);
    expect([onOne.status, onOne.headers.get('allow')]).toEqual([405, 'GET, PATCH, DELETE']);
    expect(onOne.body.error).toBe('method_not_allowed');
  });
});

describe('budgets without a ledger', () => {
  it('answers every budget operation with 503 ledger_unavailable when the ledger is off (LEDGER=off)', async () => {
    const gateway = await startGateway({ env: { LEDGER: 'off', API_KEYS: ADMIN_KEY } });
    try {
      const responses = [
        ['get', '/budgets', '/budgets', undefined],
        ['post', '/budgets', '/budgets', { scope: 'global', limit_usd: 1, period: 'day' }],
        ['get', '/budgets/bud_x', '/budgets/{budget_id}', undefined],
        ['patch', '/budgets/bud_x', '/budgets/{budget_id}', { limit_usd: 1 }],
        ['delete', '/budgets/bud_x', '/budgets/{budget_id}', undefined],
      ] as const;
      for (const [method, path, contractPath, body] of responses) {
        const response = await rest(gateway, method.toUpperCase(), path, body, asAdmin);
        expectContract(response, contractPath, method);
        expect({ method, status: response.status, error: response.body.error }).toEqual({
          method,
          status: 503,
          error: 'ledger_unavailable',
        });
      }
      const graphql = await gateway.graphql(budgetsQuery, {}, asAdmin);
      expect(errorOf(graphql.body).code).toBe('ledger_unavailable');
    } finally {
      await gateway.close();
    }
  });

  describe('when the PostgreSQL ledger goes away', () => {
    let postgres: TestPostgres;
    let gateway: RunningGateway;
    let stopped = false;

    beforeAll(async () => {
      postgres = await startPostgres();
      gateway = await startGateway({ env: { DATABASE_URL: await postgres.createDatabase(), API_KEYS: ADMIN_KEY } });
    }, 60_000);
    afterAll(async () => {
      await gateway?.close();
      if (!stopped) await postgres?.stop();
    }, 60_000);

    it('answers every budget operation with 503 ledger_unavailable once its database is stopped', async () => {
      const created = await rest(gateway, 'POST', '/budgets', { scope: 'global', limit_usd: 1, period: 'day' }, asAdmin);
      expect(created.status).toBe(201);
      const budget = created.body as Budget;
      stopped = true;
      await postgres.stop();

      const responses = [
        ['get', '/budgets', '/budgets', undefined],
        ['post', '/budgets', '/budgets', { scope: 'global', limit_usd: 1, period: 'week' }],
        ['get', budgetPath(budget.id), '/budgets/{budget_id}', undefined],
        ['patch', budgetPath(budget.id), '/budgets/{budget_id}', { limit_usd: 2 }],
        ['delete', budgetPath(budget.id), '/budgets/{budget_id}', undefined],
      ] as const;
      for (const [method, path, contractPath, body] of responses) {
        const response = await rest(gateway, method.toUpperCase(), path, body, asAdmin);
        expectContract(response, contractPath, method);
        expect({ method, status: response.status, error: response.body.error }).toEqual({
          method,
          status: 503,
          error: 'ledger_unavailable',
        });
      }
    }, 60_000);
  });
});
