/**
 * The generation ledger as its users meet it (issue 11): every generation recorded and read back
 * through REST (/generations, /generations/{generation_id}, /usage) and GraphQL, roles, usage
 * reports that agree with the rows, time bounds, UTC days, paging under concurrent inserts and
 * bad input. One suite, run against the embedded SQLite ledger and against a real PostgreSQL
 * (a throw-away cluster, or TEST_DATABASE_URL's server); each setup gets fresh databases.
 */
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import {
  ADMIN_KEY,
  bearer,
  CHAT_MODEL,
  COMPLETION_MODEL,
  expectSameTotals,
  FILE_KEYS,
  GENERATION_FIELDS,
  generationCalls,
  getChecked,
  groupOf,
  LEDGER_MODELS,
  type LedgerGeneration,
  type LedgerSetup,
  ledgerCatalog,
  postgresLedgerSetup,
  type Query,
  seedLedger,
  sqliteLedgerSetup,
  sumRows,
  tally,
  USAGE_FIELDS,
  type UsageReport,
  walkGenerations,
  withQuery,
  writeKeysFile,
} from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const { alice, bob, carol, dave } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);
const asAlice = bearer(alice.key);
const asBob = bearer(bob.key);
const asCarol = bearer(carol.key);
const asDave = bearer(dave.key);

const GROUP_BYS = ['model', 'caller', 'team', 'day'] as const;

const generationQuery = `query ($id: String!) { generation(generation_id: $id) { ${GENERATION_FIELDS} } }`;
const generationsQuery = `query ($model_id: String, $status: GenerationStatus, $caller: String, $since: DateTimeISO, $until: DateTimeISO, $limit: Int, $cursor: String) {
  generations(model_id: $model_id, status: $status, caller: $caller, since: $since, until: $until, limit: $limit, cursor: $cursor) {
    generations { ${GENERATION_FIELDS} } next_cursor
  }
}`;
const usageQuery = `query ($group_by: UsageGroupBy, $since: DateTimeISO, $until: DateTimeISO) {
  usage(group_by: $group_by, since: $since, until: $until) { ${USAGE_FIELDS} }
}`;
const generateMutation = `mutation ($prompt: String!, $model_id: String!) {
  generate(prompt: $prompt, model_id: $model_id) {
    text metrics { input_tokens output_tokens total_tokens } metadata { generation_id request_id cost_usd { total } }
  }
}`;
const batchMutation = `mutation ($prompts: [String!]!, $model_id: String!) {
  generate_batch(prompts: $prompts, model_id: $model_id) { results { index success error text metadata { generation_id } } }
}`;

type GraphQLBody = { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
const errorCodeOf = (body: GraphQLBody): unknown => body.errors?.[0]?.extensions?.code;

/** A 400 validation_error that names `parameter` in its details (as the brief and the contract's conventions say). */
function expectValidationError(response: RestResponse, contractPath: '/generations' | '/usage', parameter: string): void {
  expectToMatchContract(response, contractPath, 'get');
  expect({ status: response.status, error: response.body?.error }).toEqual({ status: 400, error: 'validation_error' });
  expect(typeof response.body.details).toBe('string');
  expect(response.body.details).toContain(parameter);
}

/** Waits until the clock has moved past `time`, so the next generation starts in a later millisecond. */
const pastMillisecond = (time: string | Date): Promise<number> =>
  poll(
    async () => Date.now(),
    (now) => now > new Date(time).getTime(),
  );

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('the generation ledger on $name', (setup) => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  /** A gateway on a fresh ledger of this setup; `extraEnv` over it. */
  const gatewayOnFreshLedger = async (extraEnv: Record<string, string> = {}): Promise<RunningGateway> => {
    const ledger = await setup.freshLedger();
    return startGateway({ catalog: ledgerCatalog(fake), env: { ...ledger.env, ...extraEnv } });
  };

  const generate = async (headers: Record<string, string>, prompt: string, model_id = CHAT_MODEL, extra: Record<string, unknown> = {}) => {
    const response = await rest(gateway, 'POST', '/generate', { prompt, model_id, ...extra }, headers);
    expectToMatchContract(response, '/generate', 'post');
    return response;
  };
  const generateOk = async (headers: Record<string, string>, prompt: string, model_id = CHAT_MODEL): Promise<string> => {
    const response = await generate(headers, prompt, model_id);
    expect(response.status).toBe(200);
    expect(typeof response.body.metadata?.generation_id).toBe('string');
    return response.body.metadata.generation_id as string;
  };
  const getGeneration = (id: string, headers: Record<string, string>, on: RunningGateway = gateway) =>
    getChecked<LedgerGeneration>(on, '/generations/{generation_id}', `/generations/${encodeURIComponent(id)}`, {}, headers);
  const listAll = (query: Query, headers: Record<string, string>, on: RunningGateway = gateway) => walkGenerations(on, query, headers);
  const usage = async (query: Query, headers: Record<string, string>, on: RunningGateway = gateway): Promise<UsageReport> => {
    const response = await getChecked<UsageReport>(on, '/usage', '/usage', query, headers);
    expect(response.status).toBe(200);
    return response.body;
  };

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const ledger = await setup.freshLedger();
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: {
        ...ledger.env,
        API_KEYS: ADMIN_KEY,
        API_KEYS_FILE: writeKeysFile([alice, bob, carol, dave]),
        RATE_LIMIT_WINDOW_MS: '600000',
      },
    });
  }, 60_000);
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
    await setup.tearDown();
  }, 60_000);

  it('records a REST generate: its generation_id reads back through REST and GraphQL with the answer’s figures', async () => {
    const before = new Date();
    const prompt = 'ledger hello world';
    const response = await generate(asAlice, prompt, CHAT_MODEL, { max_tokens: 5, temperature: 0.3, top_p: 0.9 });
    const after = new Date();
    expect(response.status).toBe(200);
    const answer = response.body;
    const id: string = answer.metadata.generation_id;
    expect(id).toEqual(expect.any(String));

    const read = await getGeneration(id, asAlice);
    expect(read.status).toBe(200);
    const row = read.body;
    expect(row).toMatchObject({
      id,
      request_id: answer.metadata.request_id,
      caller: 'alice',
      team: 'red',
      source: 'generate',
      model_id: CHAT_MODEL,
      provider: 'vllm',
      status: 'succeeded',
      error: null,
      prompt,
      text: answer.text,
      parameters: { max_tokens: 5, temperature: 0.3, top_p: 0.9 },
      metrics: {
        latency_ms: expect.any(Number),
        input_tokens: answer.metrics.input_tokens,
        output_tokens: answer.metrics.output_tokens,
        total_tokens: answer.metrics.total_tokens,
      },
      prompt_ref: null,
      evaluation_id: null,
    });
    expect(row.request_id).toBe(response.headers.get('x-request-id'));
    expect(answer.metadata.cost_usd.total).toBeGreaterThan(0);
    expect(row.cost_usd).toBeCloseTo(answer.metadata.cost_usd.total, 12);
    const created = new Date(row.created_at).getTime();
    expect(created).toBeGreaterThanOrEqual(before.getTime());
    expect(created).toBeLessThanOrEqual(after.getTime());

    // GraphQL: the same row, field for field.
    const graphql = await gateway.graphql(generationQuery, { id }, asAlice);
    expect(graphql.body.errors).toBeUndefined();
    const viaGraphql = graphql.body.data.generation as Record<string, unknown>;
    expect(Object.keys(viaGraphql)).toHaveLength(17);
    const sameKeys = Object.fromEntries(Object.keys(viaGraphql).map((key) => [key, (row as unknown as Record<string, unknown>)[key]]));
    expect(sameKeys).toEqual(viaGraphql);

    // In the list too (admins see it).
    const listed = await listAll({ since: before }, asAdmin);
    expect(listed.map((generation) => generation.id)).toEqual([id]);
  });

  it('records a GraphQL generate with its generation_id, caller and cost', async () => {
    const prompt = 'graphql ledger prompt';
    const result = await gateway.graphql(generateMutation, { prompt, model_id: COMPLETION_MODEL }, asAdmin);
    expect(result.body.errors).toBeUndefined();
    const answer = result.body.data.generate;
    const id = answer.metadata.generation_id as string;
    expect(id).toEqual(expect.any(String));

    const read = await gateway.graphql(generationQuery, { id }, asAdmin);
    expect(read.body.errors).toBeUndefined();
    const row = read.body.data.generation;
    expect(row).toMatchObject({
      id,
      request_id: answer.metadata.request_id,
      caller: 'key-1',
      team: null,
      source: 'generate',
      model_id: COMPLETION_MODEL,
      status: 'succeeded',
      error: null,
      prompt,
      text: answer.text,
      metrics: {
        input_tokens: answer.metrics.input_tokens,
        output_tokens: answer.metrics.output_tokens,
        total_tokens: answer.metrics.total_tokens,
      },
    });
    expect(row.cost_usd).toBeCloseTo(answer.metadata.cost_usd.total, 12);
    expect(row.cost_usd).toBeGreaterThan(0);
  });

  it('records each prompt of a batch, a failed one included (failed, upstream_error, 0 output tokens), and gives every result its generation_id', async () => {
    const before = new Date();
    fake.failPromptsContaining = 'broken';
    const prompts = ['batch one fine', 'batch two broken', 'batch three fine'];
    const response = await rest(gateway, 'POST', '/generate/batch', { prompts, model_id: CHAT_MODEL, max_tokens: 20 }, asBob);
    expectToMatchContract(response, '/generate/batch', 'post');
    expect(response.status).toBe(200);
    const results: any[] = response.body.results;
    expect(results.map((result) => result.success)).toEqual([true, false, true]);
    const ids = results.map((result) => result.metadata?.generation_id as string);
    for (const id of ids) expect(id).toEqual(expect.any(String));
    expect(new Set(ids).size).toBe(3);
    expect(generationCalls(fake)).toHaveLength(3);

    for (const [index, result] of results.entries()) {
      const read = await getGeneration(ids[index]!, asBob);
      expect(read.status).toBe(200);
      const row = read.body;
      expect(row).toMatchObject({
        id: ids[index],
        caller: 'bob',
        team: null,
        source: 'batch',
        model_id: CHAT_MODEL,
        provider: 'vllm',
        prompt: prompts[index],
        parameters: response.body.parameters,
        prompt_ref: null,
        evaluation_id: null,
      });
      if (index === 1) {
        expect(row).toMatchObject({ status: 'failed', error: 'upstream_error', text: null });
        expect(row.metrics.output_tokens).toBe(0);
        expect(row.metrics.total_tokens).toBe(row.metrics.input_tokens);
        expect(row.cost_usd).toBeGreaterThanOrEqual(0);
      } else {
        expect(row).toMatchObject({
          status: 'succeeded',
          error: null,
          text: result.text,
          metrics: {
            input_tokens: result.metadata.input_tokens,
            output_tokens: result.metadata.output_tokens,
            total_tokens: result.metadata.total_tokens,
          },
        });
        expect(row.cost_usd).toBeCloseTo(result.metadata.cost_usd.total, 12);
      }
    }

    const listed = await listAll({ since: before }, asAdmin);
    expect(listed.map((generation) => generation.id).sort()).toEqual([...ids].sort());
    const failed = await listAll({ since: before, status: 'failed' }, asAdmin);
    expect(failed.map((generation) => generation.id)).toEqual([ids[1]]);
  });

  it('gives every GraphQL batch result a generation_id, the failed one too, and records it as failed', async () => {
    fake.failPromptsContaining = 'broken';
    const result = await gateway.graphql(batchMutation, { prompts: ['gql fine', 'gql broken'], model_id: CHAT_MODEL }, asCarol);
    expect(result.body.errors).toBeUndefined();
    const results = result.body.data.generate_batch.results as Array<{ success: boolean; metadata: { generation_id: string } }>;
    expect(results.map((item) => item.success)).toEqual([true, false]);
    const [fineId, failedId] = results.map((item) => item.metadata.generation_id);
    expect(fineId).toEqual(expect.any(String));
    expect(failedId).toEqual(expect.any(String));

    const fine = await gateway.graphql(generationQuery, { id: fineId }, asCarol);
    const failed = await gateway.graphql(generationQuery, { id: failedId }, asCarol);
    expect(fine.body.data.generation).toMatchObject({
      source: 'batch',
      status: 'succeeded',
      caller: 'carol',
      team: 'blue',
      prompt: 'gql fine',
    });
    expect(failed.body.data.generation).toMatchObject({
      source: 'batch',
      status: 'failed',
      error: 'upstream_error',
      caller: 'carol',
      team: 'blue',
      prompt: 'gql broken',
      text: null,
      metrics: { output_tokens: 0 },
    });
  });

  it('records nothing for requests refused before any upstream call (validation, unknown model, auth, rate limit)', async () => {
    const before = new Date();
    const refusals: Array<[RestResponse, number, string]> = [
      [await generate(asAdmin, 'too few tokens', CHAT_MODEL, { max_tokens: 0 }), 400, 'validation_error'],
      [await generate(asAdmin, 'unknown model', 'no-such-model'), 404, 'model_not_found'],
      [await generate({}, 'no key'), 401, 'unauthorized'],
      [await generate(bearer('not-a-configured-key-0123456789'), 'wrong key'), 401, 'unauthorized'],
    ];
    const emptyBatch = await rest(gateway, 'POST', '/generate/batch', { prompts: [], model_id: CHAT_MODEL }, asAdmin);
    expectToMatchContract(emptyBatch, '/generate/batch', 'post');
    refusals.push([emptyBatch, 400, 'validation_error']);
    for (const [response, status, code] of refusals) expect([response.status, response.body.error]).toEqual([status, code]);

    const graphqlInvalid = await gateway.graphql(
      'mutation { generate(prompt: "hi", model_id: "tiny-chat", max_tokens: 0) { text } }',
      undefined,
      asAdmin,
    );
    const graphqlUnknown = await gateway.graphql(generateMutation, { prompt: 'hi', model_id: 'no-such-model' }, asAdmin);
    expect(errorCodeOf(graphqlInvalid.body)).toBe('validation_error');
    expect(errorCodeOf(graphqlUnknown.body)).toBe('model_not_found');

    // dave may generate once per window: the second is refused by the rate limit.
    const allowed = await generateOk(asDave, 'dave once');
    const limited = await generate(asDave, 'dave twice');
    expect([limited.status, limited.body.error]).toEqual([429, 'rate_limit_exceeded']);

    expect(generationCalls(fake)).toHaveLength(1);
    const listed = await listAll({ since: before }, asAdmin);
    expect(listed.map((generation) => generation.id)).toEqual([allowed]);
    const report = await usage({ since: before }, asAdmin);
    expect(report.totals.requests).toBe(1);
  });

  describe('roles', () => {
    let since: Date;
    let ids: { alice: string; bob: string; admin: string; carol: string };

    beforeAll(async () => {
      since = new Date();
      ids = {
        alice: await generateOk(asAlice, 'alice writes'),
        bob: await generateOk(asBob, 'bob writes'),
        admin: await generateOk(asAdmin, 'admin writes', COMPLETION_MODEL),
        carol: await generateOk(asCarol, 'carol writes'),
      };
    });

    it('shows admins every caller’s generations, with each caller’s team (null without one), and filters by caller', async () => {
      const expected = [
        [ids.carol, 'carol', 'blue'],
        [ids.admin, 'key-1', null],
        [ids.bob, 'bob', null],
        [ids.alice, 'alice', 'red'],
      ];
      for (const headers of [asAdmin, asCarol]) {
        const listed = await listAll({ since }, headers);
        expect(listed.map((generation) => [generation.id, generation.caller, generation.team])).toEqual(expected);
      }
      const onlyAlice = await listAll({ since, caller: 'alice' }, asAdmin);
      expect(onlyAlice.map((generation) => generation.id)).toEqual([ids.alice]);
      const bobsRow = await getGeneration(ids.bob, asAdmin);
      expect([bobsRow.status, bobsRow.body.caller]).toEqual([200, 'bob']);
    });

    it('shows a member only their own generations; their own name as caller is fine, another is 403 forbidden', async () => {
      expect((await listAll({ since }, asAlice)).map((generation) => generation.id)).toEqual([ids.alice]);
      expect((await listAll({ since, caller: 'alice' }, asAlice)).map((generation) => generation.id)).toEqual([ids.alice]);
      expect((await listAll({ since }, asBob)).map((generation) => generation.id)).toEqual([ids.bob]);
      expect((await getGeneration(ids.alice, asAlice)).status).toBe(200);

      const forbidden = await getChecked(gateway, '/generations', '/generations', { since, caller: 'bob' }, asAlice);
      expect([forbidden.status, forbidden.body.error]).toEqual([403, 'forbidden']);
      const forbiddenAdmin = await getChecked(gateway, '/generations', '/generations', { caller: 'key-1' }, asBob);
      expect([forbiddenAdmin.status, forbiddenAdmin.body.error]).toEqual([403, 'forbidden']);

      const graphqlOwn = await gateway.graphql(generationsQuery, { since: since.toISOString() }, asAlice);
      expect(graphqlOwn.body.errors).toBeUndefined();
      expect(graphqlOwn.body.data.generations.generations.map((generation: LedgerGeneration) => generation.id)).toEqual([ids.alice]);
      const graphqlForbidden = await gateway.graphql(generationsQuery, { caller: 'bob' }, asAlice);
      expect(errorCodeOf(graphqlForbidden.body)).toBe('forbidden');
    });

    it('answers a member asking for another caller’s generation exactly as for a missing one (404 generation_not_found, same bytes)', async () => {
      // A missing id of the same shape and length as bob's.
      const last = ids.bob.at(-1) === '0' ? '1' : '0';
      const missing = `${ids.bob.slice(0, -1)}${last}`;
      const raw = async (id: string) => {
        const response = await fetch(`${gateway.url}/api/v1/generations/${id}`, { headers: asAlice });
        const text = await response.text();
        const body = JSON.parse(text) as { timestamp: string };
        expectToMatchContract({ status: response.status, headers: response.headers, body }, '/generations/{generation_id}', 'get');
        return { status: response.status, contentType: response.headers.get('content-type'), body, text };
      };
      const others = await raw(ids.bob);
      const absent = await raw(missing);
      expect(others.status).toBe(404);
      expect(others.body).toMatchObject({ error: 'generation_not_found' });
      const normalise = (answer: typeof others, id: string) => ({
        status: answer.status,
        contentType: answer.contentType,
        text: answer.text.split(answer.body.timestamp).join('<timestamp>').split(id).join('<id>'),
      });
      expect(normalise(others, ids.bob)).toEqual(normalise(absent, missing));

      const graphqlOthers = await gateway.graphql(generationQuery, { id: ids.bob }, asAlice);
      const graphqlAbsent = await gateway.graphql(generationQuery, { id: missing }, asAlice);
      expect(errorCodeOf(graphqlOthers.body)).toBe('generation_not_found');
      expect(errorCodeOf(graphqlAbsent.body)).toBe('generation_not_found');
      expect(graphqlOthers.body.errors?.[0]?.message.split(ids.bob).join('<id>')).toBe(
        graphqlAbsent.body.errors?.[0]?.message.split(missing).join('<id>'),
      );
    });

    it('groups usage by team with "" for callers without one, and shows a member only their own usage', async () => {
      const byTeam = await usage({ since, group_by: 'team' }, asAdmin);
      expect(Object.fromEntries(byTeam.rows.map((row) => [row.group, row.requests]))).toEqual({ '': 2, blue: 1, red: 1 });
      const byCaller = await usage({ since, group_by: 'caller' }, asAdmin);
      expect(Object.fromEntries(byCaller.rows.map((row) => [row.group, row.requests]))).toEqual({ alice: 1, bob: 1, carol: 1, 'key-1': 1 });

      const aliceByCaller = await usage({ since, group_by: 'caller' }, asAlice);
      expect(aliceByCaller.rows.map((row) => [row.group, row.requests])).toEqual([['alice', 1]]);
      expect(aliceByCaller.totals.requests).toBe(1);
      const aliceByTeam = await usage({ since, group_by: 'team' }, asAlice);
      expect(aliceByTeam.rows.map((row) => [row.group, row.requests])).toEqual([['red', 1]]);
      const bobByTeam = await usage({ since, group_by: 'team' }, asBob);
      expect(bobByTeam.rows.map((row) => [row.group, row.requests])).toEqual([['', 1]]);
      expectSameTotals(bobByTeam.totals, tally(await listAll({ since }, asBob)), 'bob’s usage');

      const graphqlAlice = await gateway.graphql(usageQuery, { group_by: 'caller', since: since.toISOString() }, asAlice);
      expect(graphqlAlice.body.errors).toBeUndefined();
      expect(graphqlAlice.body.data.usage.rows.map((row: { group: string }) => row.group)).toEqual(['alice']);
    });
  });

  it('reports usage whose totals are the sum of its rows and agree with /generations for the same filters, for every group_by', async () => {
    const since = new Date();
    await generateOk(asAlice, 'usage one');
    await generateOk(asAlice, 'usage two', COMPLETION_MODEL);
    await generateOk(asBob, 'usage three with more words in it');
    fake.failPromptsContaining = 'broken';
    const failing = await generate(asCarol, 'usage broken single');
    expect([failing.status, failing.body.error]).toEqual([502, 'upstream_error']);
    const batch = await rest(
      gateway,
      'POST',
      '/generate/batch',
      { prompts: ['u fine', 'u broken', 'u fine too'], model_id: CHAT_MODEL },
      asAdmin,
    );
    expect(batch.status).toBe(200);
    fake.failPromptsContaining = undefined;
    const until = new Date(Date.now() + 1);

    const all = await listAll({ since, limit: 2 }, asAdmin);
    expect(all).toHaveLength(7);
    const expected = tally(all);
    expect([expected.requests, expected.succeeded, expected.failed]).toEqual([7, 5, 2]);
    for (const generation of all.filter((item) => item.status === 'failed')) {
      expect([generation.error, generation.metrics.output_tokens]).toEqual(['upstream_error', 0]);
    }

    for (const groupBy of GROUP_BYS) {
      for (const bounds of [{ since }, { since, until }]) {
        const report = await usage({ ...bounds, group_by: groupBy }, asAdmin);
        expect(report.group_by).toBe(groupBy);
        expect(new Date(report.since ?? '').getTime()).toBe(since.getTime());
        if ('until' in bounds) expect(new Date(report.until ?? '').getTime()).toBe(until.getTime());
        else expect(report.until).toBeNull();
        expectSameTotals(report.totals, sumRows(report.rows), `${groupBy}: totals vs rows`);
        expectSameTotals(report.totals, expected, `${groupBy}: totals vs /generations`);
        const groups = [...new Set(all.map((generation) => groupOf(groupBy, generation)))].sort();
        expect(report.rows.map((row) => row.group).sort()).toEqual(groups);
        for (const row of report.rows) {
          const { group, ...totals } = row;
          expectSameTotals(totals, tally(all.filter((generation) => groupOf(groupBy, generation) === group)), `${groupBy} row ${group}`);
        }
      }
    }

    // Filters of /generations agree with the report's figures.
    const byModel = await usage({ since, group_by: 'model' }, asAdmin);
    for (const { group, ...totals } of byModel.rows) {
      expectSameTotals(tally(await listAll({ since, model_id: group, limit: 3 }, asAdmin)), totals, `model ${group}`);
    }
    expect(await listAll({ since, status: 'failed' }, asAdmin)).toHaveLength(byModel.totals.failed);
    expect(await listAll({ since, status: 'succeeded' }, asAdmin)).toHaveLength(byModel.totals.succeeded);

    // The whole ledger, unfiltered, agrees too.
    expectSameTotals((await usage({}, asAdmin)).totals, tally(await listAll({ limit: 200 }, asAdmin)), 'unfiltered');

    // GraphQL gives the same report.
    const graphql = await gateway.graphql(usageQuery, { group_by: 'caller', since: since.toISOString() }, asAdmin);
    expect(graphql.body.errors).toBeUndefined();
    const rest_ = await usage({ since, group_by: 'caller' }, asAdmin);
    expect(graphql.body.data.usage.totals).toEqual(rest_.totals);
    expect(graphql.body.data.usage.rows).toEqual(expect.arrayContaining(rest_.rows));
    expect(graphql.body.data.usage.rows).toHaveLength(rest_.rows.length);
  });

  it('takes since as inclusive and until as exclusive, in /generations and /usage alike', async () => {
    const start = new Date();
    const made: string[] = [];
    for (let index = 0; index < 5; index++) {
      const id = await generateOk(asAlice, `bounded ${index}`);
      made.push(id);
      // The next one starts in a later millisecond, so the bounds below fall between rows.
      await pastMillisecond((await getGeneration(id, asAlice)).body.created_at);
    }
    const rows = (await listAll({ since: start }, asAlice)).reverse(); // oldest first
    expect(rows.map((row) => row.id)).toEqual(made);
    const lower = rows[1]!.created_at;
    const upper = rows[3]!.created_at;
    expect(new Date(upper).getTime()).toBeGreaterThan(new Date(lower).getTime());
    const time = (row: LedgerGeneration) => new Date(row.created_at).getTime();
    const inside = rows.filter((row) => time(row) >= new Date(lower).getTime() && time(row) < new Date(upper).getTime());
    expect(inside.map((row) => row.id)).toEqual([made[1], made[2]]);

    const bounded = await listAll({ since: lower, until: upper }, asAlice);
    expect(bounded.map((row) => row.id).reverse()).toEqual([made[1], made[2]]);
    const report = await usage({ since: lower, until: upper, group_by: 'caller' }, asAlice);
    expect(report.totals.requests).toBe(2);
    expectSameTotals(report.totals, tally(bounded), 'bounded usage');
    expect(new Date(report.since ?? '').toISOString()).toBe(new Date(lower).toISOString());
    expect(new Date(report.until ?? '').toISOString()).toBe(new Date(upper).toISOString());

    // An empty range: since = until.
    expect(await listAll({ since: lower, until: lower }, asAlice)).toEqual([]);
    expect((await usage({ since: lower, until: lower }, asAlice)).totals.requests).toBe(0);

    const graphql = await gateway.graphql(generationsQuery, { since: lower, until: upper }, asAlice);
    expect(graphql.body.errors).toBeUndefined();
    expect(graphql.body.data.generations.generations.map((row: LedgerGeneration) => row.id).reverse()).toEqual([made[1], made[2]]);
    const graphqlUsage = await gateway.graphql(usageQuery, { since: lower, until: upper }, asAlice);
    expect(graphqlUsage.body.data.usage.totals.requests).toBe(2);
  });

  it('groups usage by UTC day, with since inclusive and until exclusive at day boundaries (rows seeded at chosen times)', async () => {
    const ledger = await setup.freshLedger();
    const at = (iso: string) => new Date(iso);
    const row = (
      iso: string,
      status: 'succeeded' | 'failed' | 'cancelled',
      inputTokens: number,
      outputTokens: number,
      costUsd: number,
    ) => ({
      createdAt: at(iso),
      caller: 'anonymous',
      team: null,
      modelId: CHAT_MODEL,
      status,
      inputTokens,
      outputTokens,
      costUsd,
    });
    const seeded = await seedLedger(ledger.settings, [
      row('2021-03-14T12:00:00.000Z', 'succeeded', 10, 5, 0.001),
      row('2021-03-14T23:59:59.999Z', 'succeeded', 20, 7, 0.002),
      row('2021-03-15T00:00:00.000Z', 'succeeded', 30, 9, 0.004),
      row('2021-03-15T13:30:00.000Z', 'failed', 40, 0, 0),
      row('2021-03-15T23:59:59.999Z', 'cancelled', 50, 0, 0),
      row('2021-03-16T00:00:00.000Z', 'succeeded', 60, 11, 0.008),
    ]);
    const seededGateway = await startGateway({ catalog: ledgerCatalog(fake), env: ledger.env });
    try {
      const days = async (query: Query) => {
        const report = await usage({ ...query, group_by: 'day' }, {}, seededGateway);
        expectSameTotals(report.totals, sumRows(report.rows), 'day totals vs rows');
        return Object.fromEntries(report.rows.map(({ group, ...totals }) => [group, totals]));
      };
      const day14 = { requests: 2, succeeded: 2, failed: 0, input_tokens: 30, output_tokens: 12, total_tokens: 42 };
      const day15 = { requests: 3, succeeded: 1, failed: 1, input_tokens: 120, output_tokens: 9, total_tokens: 129 };
      const day16 = { requests: 1, succeeded: 1, failed: 0, input_tokens: 60, output_tokens: 11, total_tokens: 71 };

      const everything = await days({ since: '2021-03-14T00:00:00.000Z', until: '2021-03-17T00:00:00.000Z' });
      expect(everything).toEqual({
        '2021-03-14': { ...day14, cost_usd: expect.closeTo(0.003, 10) },
        '2021-03-15': { ...day15, cost_usd: expect.closeTo(0.004, 10) },
        '2021-03-16': { ...day16, cost_usd: expect.closeTo(0.008, 10) },
      });
      // since at the last millisecond of the 14th: that row counts, the noon one does not; until at midnight of the 16th excludes it.
      expect(await days({ since: '2021-03-14T23:59:59.999Z', until: '2021-03-16T00:00:00.000Z' })).toEqual({
        '2021-03-14': {
          ...day14,
          requests: 1,
          succeeded: 1,
          input_tokens: 20,
          output_tokens: 7,
          total_tokens: 27,
          cost_usd: expect.closeTo(0.002, 10),
        },
        '2021-03-15': { ...day15, cost_usd: expect.closeTo(0.004, 10) },
      });
      // The 15th alone, given in UTC and as the same instant with an offset.
      for (const since of ['2021-03-15T00:00:00.000Z', '2021-03-15T01:00:00+01:00']) {
        expect(await days({ since, until: '2021-03-16T00:00:00Z' })).toEqual({
          '2021-03-15': { ...day15, cost_usd: expect.closeTo(0.004, 10) },
        });
      }
      const listed = await listAll({ since: '2021-03-15T00:00:00.000Z', until: '2021-03-16T00:00:00.000Z' }, {}, seededGateway);
      expect(listed.map((generation) => generation.id)).toEqual([seeded[4], seeded[3], seeded[2]]);
      expect(listed.map((generation) => generation.status)).toEqual(['cancelled', 'failed', 'succeeded']);
      expect((await listAll({ status: 'cancelled' }, {}, seededGateway)).map((generation) => generation.id)).toEqual([seeded[4]]);

      const graphql = await seededGateway.graphql(usageQuery, {
        group_by: 'day',
        since: '2021-03-15T00:00:00.000Z',
        until: '2021-03-16T00:00:00.000Z',
      });
      expect(graphql.body.errors).toBeUndefined();
      expect(graphql.body.data.usage.rows).toEqual([{ group: '2021-03-15', ...day15, cost_usd: expect.closeTo(0.004, 10) }]);
    } finally {
      await seededGateway.close();
    }
  });

  it('groups live generations by the UTC day of their created_at', async () => {
    const since = new Date();
    await generateOk(asAlice, 'today one');
    await generateOk(asBob, 'today two');
    const all = await listAll({ since }, asAdmin);
    const report = await usage({ since, group_by: 'day' }, asAdmin);
    const days = [...new Set(all.map((generation) => new Date(generation.created_at).toISOString().slice(0, 10)))];
    expect(report.rows.map((row) => row.group).sort()).toEqual(days.sort());
    for (const row of report.rows) expect(row.group).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expectSameTotals(report.totals, tally(all), 'live day totals');
  });

  it('pages newest first with a default of 50, limits 1-200 and a null next_cursor on the last page', async () => {
    const since = new Date();
    for (let batch = 0; batch < 6; batch++) {
      const prompts = Array.from({ length: 10 }, (_, index) => `paged ${batch}-${index}`);
      const response = await rest(gateway, 'POST', '/generate/batch', { prompts, model_id: COMPLETION_MODEL }, asAdmin);
      expect(response.status).toBe(200);
    }
    const page = async (query: Query) => {
      const response = await getChecked(gateway, '/generations', '/generations', { since, ...query }, asAdmin);
      expect(response.status).toBe(200);
      return response.body as { generations: LedgerGeneration[]; next_cursor: string | null };
    };
    const byDefault = await page({});
    expect(byDefault.generations).toHaveLength(50);
    expect(byDefault.next_cursor).toEqual(expect.any(String));
    const whole = await page({ limit: 200 });
    expect(whole.generations).toHaveLength(60);
    expect(whole.next_cursor).toBeNull();
    expect((await page({ limit: 60 })).next_cursor).toBeNull();
    const one = await page({ limit: 1 });
    expect(one.generations.map((generation) => generation.id)).toEqual([whole.generations[0]!.id]);
    expect(byDefault.generations.map((generation) => generation.id)).toEqual(
      whole.generations.slice(0, 50).map((generation) => generation.id),
    );
    const times = whole.generations.map((generation) => new Date(generation.created_at).getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const rest2 = await page({ cursor: byDefault.next_cursor ?? undefined });
    expect(rest2.generations.map((generation) => generation.id)).toEqual(whole.generations.slice(50).map((generation) => generation.id));
    expect(rest2.next_cursor).toBeNull();

    const graphql = await gateway.graphql(generationsQuery, { since: since.toISOString() }, asAdmin);
    expect(graphql.body.data.generations.generations).toHaveLength(50);
  });

  it('walks every page once under concurrent inserts: no row repeated, none of the older rows skipped', async () => {
    const since = new Date();
    for (let batch = 0; batch < 3; batch++) {
      const prompts = Array.from({ length: 10 }, (_, index) => `walk ${batch}-${index}`);
      expect((await rest(gateway, 'POST', '/generate/batch', { prompts, model_id: COMPLETION_MODEL }, asAdmin)).status).toBe(200);
    }
    const snapshot = (await listAll({ since, limit: 200 }, asAdmin)).map((generation) => generation.id);
    expect(snapshot).toHaveLength(30);

    const inserted: string[] = [];
    let inserting = true;
    let insertFailure: unknown;
    let inserter: Promise<void> | undefined;
    const walked = await walkGenerations(gateway, { since, limit: 3 }, asAdmin, async () => {
      // From the first page on, at least one new generation lands between any two pages.
      inserter ??= (async () => {
        let turn = 0;
        while (inserting) {
          const response = await rest(gateway, 'POST', '/generate', { prompt: `concurrent ${turn++}`, model_id: CHAT_MODEL }, asAdmin);
          if (response.status !== 200) {
            insertFailure = response.body;
            return;
          }
          inserted.push(response.body.metadata.generation_id);
        }
      })();
      const count = inserted.length;
      await poll(
        async () => inserted.length,
        (now) => now > count || insertFailure !== undefined,
      );
    });
    inserting = false;
    await inserter;
    expect(insertFailure).toBeUndefined();
    expect(inserted.length).toBeGreaterThanOrEqual(9);

    const walkedIds = walked.map((generation) => generation.id);
    expect(new Set(walkedIds).size).toBe(walkedIds.length);
    expect(walkedIds.filter((id) => snapshot.includes(id))).toEqual(snapshot);
    expect(walkedIds.filter((id) => !snapshot.includes(id) && !inserted.includes(id))).toEqual([]);
    const times = walked.map((generation) => new Date(generation.created_at).getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    // Every concurrent insert is recorded.
    const after = (await listAll({ since, limit: 200 }, asAdmin)).map((generation) => generation.id);
    expect(after).toEqual(expect.arrayContaining([...snapshot, ...inserted]));
    expect(after).toHaveLength(snapshot.length + inserted.length);
  });

  it.each([
    ['/generations', 'limit', { limit: 0 }],
    ['/generations', 'limit', { limit: 201 }],
    ['/generations', 'limit', { limit: 'ten' }],
    ['/generations', 'since', { since: 'yesterday' }],
    ['/generations', 'until', { until: '2024-13-45T00:00:00Z' }],
    ['/generations', 'status', { status: 'done' }],
    ['/generations', 'cursor', { cursor: 'not-a-cursor' }],
    ['/generations', 'cursor', { cursor: 'eyJmb28iOjF9' }],
    ['/usage', 'group_by', { group_by: 'week' }],
    ['/usage', 'since', { since: '2024-02-30' }],
    ['/usage', 'until', { until: 'not-a-date' }],
  ] as const)('answers GET %s by 400 validation_error naming %s in details (%j)', async (contractPath, parameter, query) => {
    const response = await rest(gateway, 'GET', withQuery(contractPath, query as Query), undefined, asAdmin);
    expectValidationError(response, contractPath, parameter);
  });

  it('answers GraphQL generations with limit 0 or 201 or a cursor it did not issue by validation_error', async () => {
    for (const variables of [{ limit: 0 }, { limit: 201 }, { cursor: 'not-a-cursor' }]) {
      const result = await gateway.graphql(generationsQuery, variables, asAdmin);
      expect([JSON.stringify(variables), errorCodeOf(result.body)]).toEqual([JSON.stringify(variables), 'validation_error']);
    }
    const fine = await gateway.graphql(generationsQuery, { limit: 200 }, asAdmin);
    expect(fine.body.errors).toBeUndefined();
  });

  it('answers a missing generation with 404 generation_not_found (REST and GraphQL)', async () => {
    const response = await getGeneration('gen_does_not_exist', asAdmin);
    expect([response.status, response.body.error]).toEqual([404, 'generation_not_found']);
    const graphql = await gateway.graphql(generationQuery, { id: 'gen_does_not_exist' }, asAdmin);
    expect(errorCodeOf(graphql.body)).toBe('generation_not_found');
  });

  describe('with authentication off and LEDGER_CONTENT=false', () => {
    let open: RunningGateway;
    beforeAll(async () => {
      open = await gatewayOnFreshLedger({ LEDGER_CONTENT: 'false' });
    });
    afterAll(() => open?.close());

    it('records callers as the admin "anonymous" without a team', async () => {
      const response = await rest(open, 'POST', '/generate', { prompt: 'who am i', model_id: CHAT_MODEL });
      expect(response.status).toBe(200);
      const row = await getGeneration(response.body.metadata.generation_id, {}, open);
      expect(row.body).toMatchObject({ caller: 'anonymous', team: null, status: 'succeeded' });
      const byCaller = await usage({ group_by: 'caller' }, {}, open);
      expect(byCaller.rows.map((item) => item.group)).toEqual(['anonymous']);
      const byTeam = await usage({ group_by: 'team' }, {}, open);
      expect(byTeam.rows.map((item) => item.group)).toEqual(['']);
      expect((await listAll({ caller: 'anonymous' }, {}, open)).map((item) => item.id)).toContain(response.body.metadata.generation_id);
    });

    it('stores neither prompt nor text: both read back as null, the figures as usual', async () => {
      const single = await rest(open, 'POST', '/generate', { prompt: 'secret content', model_id: CHAT_MODEL });
      expect(single.status).toBe(200);
      expect(single.body.text).toBe('echo: secret content');
      const batch = await rest(open, 'POST', '/generate/batch', { prompts: ['secret a', 'secret b'], model_id: COMPLETION_MODEL });
      expect(batch.status).toBe(200);
      const ids = [single.body.metadata.generation_id, ...batch.body.results.map((result: any) => result.metadata.generation_id)];
      for (const id of ids) {
        const row = await getGeneration(id, {}, open);
        expect(row.status).toBe(200);
        expect(row.body).toMatchObject({ id, status: 'succeeded', prompt: null, text: null });
        expect(row.body.metrics.output_tokens).toBeGreaterThan(0);
        const graphql = await open.graphql(generationQuery, { id });
        expect(graphql.body.data.generation).toMatchObject({ prompt: null, text: null });
      }
      expect(JSON.stringify(await listAll({}, {}, open))).not.toContain('secret');
    });
  });
});
