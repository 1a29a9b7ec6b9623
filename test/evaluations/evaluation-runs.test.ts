/**
 * Evaluation runs as their users meet them (issue 14): a run over a dataset's cases x prompt
 * versions x models is accepted at once (202), runs in the background, scores every cell exactly as
 * the Scorer schema says, ranks its variants, lists its cells, records every generation (candidates
 * and judges) in the ledger, and can be cancelled. Against the embedded SQLite ledger and a real
 * PostgreSQL, through the real gateway in front of a fake OpenAI-compatible upstream.
 */
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import {
  ADMIN_KEY,
  bearer,
  CHAT_MODEL,
  COMPLETION_MODEL,
  FILE_KEYS,
  type LedgerGeneration,
  type LedgerSetup,
  LEDGER_MODELS,
  ledgerCatalog,
  postgresLedgerSetup,
  sqliteLedgerSetup,
  walkGenerations,
  writeKeysFile,
} from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const { alice, bob } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);
const asAlice = bearer(alice.key);
const asBob = bearer(bob.key);

const CASES = 20;
/** The fake fails every generation whose prompt holds this: case 13's four cells fail. */
const FAILING_WORD = 'w13';
/** The judge answers garbage for this case: its llm_judge score is 0 with a note. */
const UNGRADABLE_WORD = 'w5';
const JUDGE_MARKER = 'You are grading an answer';

interface Variant {
  prompt: { name: string; version: number };
  model_id: string;
  cases: number;
  completed: number;
  failed: number;
  passed: number;
  pass_rate: number | null;
  mean_score: number | null;
  scores: Record<string, number>;
  mean_latency_ms: number | null;
  p95_latency_ms: number | null;
  total_tokens: number;
  cost_usd: number;
  cost_per_pass_usd: number | null;
}

interface Evaluation {
  id: string;
  name: string | null;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  dataset_id: string;
  prompts: Array<{ name: string; version: number }>;
  model_ids: string[];
  scorers: Array<Record<string, unknown>>;
  progress: { total: number; completed: number; failed: number };
  variants: Variant[];
  best: { prompt: { name: string; version: number }; model_id: string } | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

interface Result {
  item_index: number;
  prompt: { name: string; version: number };
  model_id: string;
  generation_id: string | null;
  text: string | null;
  expected: string | null;
  scores: Array<{ scorer: string; score: number; passed: boolean; note?: string | null }>;
  passed: boolean;
  latency_ms: number | null;
  cost_usd: number;
  error: string | null;
}

const EVALUATION_FIELDS = `id name status dataset_id prompts { name version } model_ids
  scorers { type name value judge_model_id rubric threshold } progress { total completed failed }
  variants { prompt { name version } model_id cases completed failed passed pass_rate mean_score scores
    mean_latency_ms p95_latency_ms total_tokens cost_usd cost_per_pass_usd }
  best { prompt { name version } model_id } error created_at started_at finished_at`;

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('evaluation runs on $name', (setup) => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  let datasetId: string;

  const checked = async (
    method: 'GET' | 'POST',
    path: string,
    contractPath: string,
    body?: unknown,
    headers = asAdmin,
  ): Promise<RestResponse> => {
    const response = await rest(gateway, method, path, body, headers);
    expectToMatchContract(response, contractPath, method === 'GET' ? 'get' : 'post');
    return response;
  };
  const getRun = async (id: string, headers = asAdmin): Promise<Evaluation> => {
    const response = await checked('GET', `/evaluations/${id}`, '/evaluations/{evaluation_id}', undefined, headers);
    expect(response.status).toBe(200);
    return response.body as Evaluation;
  };
  const waitForEnd = (id: string, timeoutMs = 30_000): Promise<Evaluation> =>
    poll(
      () => getRun(id),
      (run) => !['queued', 'running'].includes(run.status),
      timeoutMs,
    );
  const allResults = async (id: string, query = ''): Promise<Result[]> => {
    const results: Result[] = [];
    let cursor: string | null = null;
    do {
      const params = new URLSearchParams(query);
      params.set('limit', '7');
      if (cursor) params.set('cursor', cursor);
      const response = await checked('GET', `/evaluations/${id}/results?${params}`, '/evaluations/{evaluation_id}/results');
      expect(response.status).toBe(200);
      results.push(...(response.body.results as Result[]));
      cursor = response.body.next_cursor as string | null;
    } while (cursor);
    return results;
  };

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const ledger = await setup.freshLedger();
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { ...ledger.env, API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([alice, bob]), EVAL_CONCURRENCY: '4' },
    });
    for (const template of ['Say {{word}}', 'Please say {{word}} now']) {
      const created = await rest(gateway, 'POST', '/prompts', { name: 'say', template, model_id: CHAT_MODEL }, asAdmin);
      expect(created.status).toBe(201);
    }
    const items = Array.from({ length: CASES }, (_unused, index) => ({
      variables: { word: `w${index}` },
      expected: `echo: Say w${index}`,
    }));
    const dataset = await rest(gateway, 'POST', '/datasets', { name: 'say words', items }, asAdmin);
    expect(dataset.status).toBe(201);
    datasetId = dataset.body.id;
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
    await setup.tearDown();
  }, 60_000);
  beforeEach(() => fake.reset());

  it('runs 20 cases x 2 prompt versions x 2 models to the end: scores, progress, ranking, results and ledger rows', async () => {
    fake.failPromptsContaining = FAILING_WORD;
    fake.answerFor = (prompt) => {
      if (!prompt.includes(JUDGE_MARKER)) return undefined;
      return prompt.includes(`echo: Say ${UNGRADABLE_WORD}`) ? 'I would rather not say.' : 'Fine answer.\nGrade: 8';
    };
    const started = await checked('POST', '/evaluations', '/evaluations', {
      name: 'polite or plain',
      dataset_id: datasetId,
      prompts: [
        { name: 'say', version: 1 },
        { name: 'say', version: 2 },
      ],
      model_ids: [CHAT_MODEL, COMPLETION_MODEL],
      scorers: [
        { type: 'exact_match' },
        { type: 'similarity' },
        { type: 'llm_judge', judge_model_id: CHAT_MODEL, rubric: 'Says the word.' },
      ],
      max_tokens: 10,
      temperature: 0,
    });
    expect([started.status, started.body.details]).toEqual([202, undefined]);
    const accepted = started.body as Evaluation;
    expect(accepted).toMatchObject({
      id: expect.stringMatching(/^ev_[0-9a-z]+$/),
      name: 'polite or plain',
      status: 'queued',
      dataset_id: datasetId,
      prompts: [
        { name: 'say', version: 1 },
        { name: 'say', version: 2 },
      ],
      model_ids: [CHAT_MODEL, COMPLETION_MODEL],
      scorers: [
        { type: 'exact_match', name: 'exact_match', threshold: 1 },
        { type: 'similarity', name: 'similarity', threshold: 0.5 },
        { type: 'llm_judge', name: 'llm_judge', judge_model_id: CHAT_MODEL, rubric: 'Says the word.', threshold: 0.5 },
      ],
      progress: { total: 80, completed: 0, failed: 0 },
      best: null,
      error: null,
      finished_at: null,
    });

    const run = await waitForEnd(accepted.id);
    expect(run.status).toBe('succeeded');
    expect(run.progress).toEqual({ total: 80, completed: 80, failed: 4 });
    expect(run.started_at).not.toBeNull();
    expect(run.finished_at).not.toBeNull();

    // Version 1 echoes the expected answer exactly; version 2 never does. The completion model is the cheaper one.
    expect(run.variants.map((variant) => `${variant.prompt.version}/${variant.model_id}`)).toEqual([
      `1/${COMPLETION_MODEL}`,
      `1/${CHAT_MODEL}`,
      `2/${COMPLETION_MODEL}`,
      `2/${CHAT_MODEL}`,
    ]);
    expect(run.best).toEqual({ prompt: { name: 'say', version: 1 }, model_id: COMPLETION_MODEL });
    const [v1Cheap, v1Dear, v2Cheap] = run.variants;
    // Case 13 failed (every scorer 0); case 5's judge grade was unparseable (judge 0, the cell fails).
    expect(v1Cheap).toMatchObject({ cases: 20, completed: 20, failed: 1, passed: 18, pass_rate: 0.9 });
    expect(v1Cheap!.scores).toEqual({ exact_match: 19 / 20, similarity: 19 / 20, llm_judge: expect.closeTo((18 * 0.8) / 20, 10) });
    expect(v1Cheap!.mean_score).toBeCloseTo((19 + 19 + 18 * 0.8) / 3 / 20, 10);
    expect(v1Dear).toMatchObject({ completed: 20, failed: 1, passed: 18, pass_rate: 0.9 });
    expect(v1Dear!.cost_usd).toBeGreaterThan(v1Cheap!.cost_usd);
    expect(v2Cheap).toMatchObject({ completed: 20, failed: 1, passed: 0, pass_rate: 0, cost_per_pass_usd: null });
    expect(v1Cheap!.cost_per_pass_usd).toBeCloseTo(v1Cheap!.cost_usd / 18, 12);
    expect(v1Cheap!.p95_latency_ms).not.toBeNull();
    expect(v1Cheap!.mean_latency_ms).not.toBeNull();

    // Every finished cell, by case, then prompt version and model in the run's order.
    const results = await allResults(run.id);
    expect(results).toHaveLength(80);
    expect(results.map((result) => `${result.item_index}:${result.prompt.version}:${result.model_id}`)).toEqual(
      Array.from({ length: CASES }, (_unused, item) =>
        [1, 2].flatMap((version) => [CHAT_MODEL, COMPLETION_MODEL].map((model) => `${item}:${version}:${model}`)),
      ).flat(),
    );
    const cell = (item: number, version: number, model: string) =>
      results.find((result) => result.item_index === item && result.prompt.version === version && result.model_id === model)!;
    expect(cell(2, 1, CHAT_MODEL)).toMatchObject({
      text: 'echo: Say w2',
      expected: 'echo: Say w2',
      passed: true,
      error: null,
      scores: [
        { scorer: 'exact_match', score: 1, passed: true },
        { scorer: 'similarity', score: 1, passed: true },
        { scorer: 'llm_judge', score: 0.8, passed: true },
      ],
    });
    expect(cell(2, 2, CHAT_MODEL).scores[0]).toMatchObject({ scorer: 'exact_match', score: 0, passed: false });
    expect(cell(13, 1, COMPLETION_MODEL)).toMatchObject({
      text: null,
      passed: false,
      error: 'upstream_error',
      latency_ms: null,
      cost_usd: 0,
    });
    expect(cell(13, 1, COMPLETION_MODEL).generation_id).toMatch(/^gen_/);
    const ungraded = cell(5, 1, CHAT_MODEL).scores[2]!;
    expect(ungraded).toMatchObject({ scorer: 'llm_judge', score: 0, passed: false });
    expect(ungraded.note).toMatch(/grade/i);
    expect(await allResults(run.id, `model_id=${COMPLETION_MODEL}`)).toHaveLength(40);

    // The ledger: 80 candidates (4 failed) and 76 judge grades, all source `evaluation` with the run's id.
    const rows = (await walkGenerations(gateway, { limit: 200 }, asAdmin)).filter((row) => row.evaluation_id === run.id);
    const candidates = rows.filter((row) => row.prompt_ref !== null);
    const judges = rows.filter((row) => row.prompt_ref === null);
    expect(rows.every((row) => row.source === 'evaluation' && row.caller === 'key-1')).toBe(true);
    expect(candidates).toHaveLength(80);
    expect(candidates.filter((row) => row.status === 'failed')).toHaveLength(4);
    expect(judges).toHaveLength(76);
    expect(judges.every((row) => row.model_id === CHAT_MODEL && row.status === 'succeeded')).toBe(true);
    // A cell's cost is its candidate's; a variant's cost sums its cells (judges show in the ledger only).
    const byId = new Map<string, LedgerGeneration>(rows.map((row) => [row.id, row]));
    for (const result of results) {
      if (result.generation_id) expect(result.cost_usd).toBe(byId.get(result.generation_id)!.cost_usd);
    }
    const sumOf = (values: number[]) => values.reduce((sum, value) => sum + value, 0);
    expect(v1Cheap!.cost_usd).toBeCloseTo(
      sumOf(candidates.filter((row) => row.prompt_ref!.version === 1 && row.model_id === COMPLETION_MODEL).map((row) => row.cost_usd)),
      12,
    );
    expect(candidates.find((row) => row.id === cell(2, 1, CHAT_MODEL).generation_id)).toMatchObject({
      prompt: 'Say w2',
      prompt_ref: { name: 'say', version: 1 },
      parameters: { max_tokens: 10, temperature: 0 },
    });

    // GraphQL answers the same run.
    const viaGraphQL = await gateway.graphql(
      `query ($id: String!) { evaluation(evaluation_id: $id) { ${EVALUATION_FIELDS} } }`,
      { id: run.id },
      asAdmin,
    );
    expect(viaGraphQL.body.errors).toBeUndefined();
    // GraphQL answers every scorer field (null when unset); REST leaves out the nulls its contract does not allow.
    expect({ ...viaGraphQL.body.data.evaluation, scorers: undefined }).toEqual({ ...run, scorers: undefined });
    expect(viaGraphQL.body.data.evaluation.scorers).toMatchObject(run.scorers);
  }, 90_000);

  it('starts, lists, reads and pages a run over GraphQL; members see only their own runs', async () => {
    const started = await gateway.graphql(
      `mutation ($dataset_id: String!) {
        start_evaluation(dataset_id: $dataset_id, prompts: [{ name: "say" }], model_ids: ["${COMPLETION_MODEL}"],
          scorers: [{ type: contains, name: "has word", value: "w" }]) { ${EVALUATION_FIELDS} }
      }`,
      { dataset_id: datasetId },
      asAlice,
    );
    expect(started.body.errors).toBeUndefined();
    const run = started.body.data.start_evaluation as Evaluation;
    expect(run.prompts).toEqual([{ name: 'say', version: 2 }]);
    const ended = await waitForEnd(run.id);
    expect(ended).toMatchObject({ status: 'succeeded', progress: { total: 20, completed: 20, failed: 0 } });
    expect(ended.variants[0]).toMatchObject({ passed: 20, pass_rate: 1, scores: { 'has word': 1 } });

    const page = await gateway.graphql(
      `query ($id: String!) { evaluation_results(evaluation_id: $id, limit: 15) { results { item_index scores { scorer score passed note } } next_cursor } }`,
      { id: run.id },
      asAlice,
    );
    expect(page.body.data.evaluation_results.results).toHaveLength(15);
    const rest2 = await gateway.graphql(
      `query ($id: String!, $cursor: String) { evaluation_results(evaluation_id: $id, cursor: $cursor) { results { item_index } next_cursor } }`,
      { id: run.id, cursor: page.body.data.evaluation_results.next_cursor },
      asAlice,
    );
    expect(rest2.body.data.evaluation_results).toEqual({
      results: [15, 16, 17, 18, 19].map((item_index) => ({ item_index })),
      next_cursor: null,
    });

    // Alice's run is hers: Bob (a member) gets exactly what a missing run gets; an admin sees it.
    const foreign = await rest(gateway, 'GET', `/evaluations/${run.id}`, undefined, asBob);
    const missing = await rest(gateway, 'GET', '/evaluations/ev_missing', undefined, asBob);
    expect(foreign.status).toBe(404);
    expect({ ...foreign.body, message: undefined, timestamp: undefined }).toEqual({
      ...missing.body,
      message: undefined,
      timestamp: undefined,
    });
    expect(foreign.body.error).toBe('evaluation_not_found');
    const bobsList = await checked('GET', '/evaluations', '/evaluations', undefined, asBob);
    expect((bobsList.body.evaluations as Evaluation[]).map((listed) => listed.id)).not.toContain(run.id);
    const alicesList = await checked('GET', '/evaluations?limit=1', '/evaluations', undefined, asAlice);
    expect((alicesList.body.evaluations as Evaluation[]).map((listed) => listed.id)).toEqual([run.id]);
    const adminList = await checked('GET', '/evaluations?limit=1', '/evaluations', undefined, asAdmin);
    expect(adminList.body.evaluations[0].id).toBe(run.id);
    expect(adminList.body.next_cursor).toEqual(expect.any(String));
    const next = await checked('GET', `/evaluations?limit=1&cursor=${adminList.body.next_cursor}`, '/evaluations');
    expect(next.body.evaluations[0].id).not.toBe(run.id);
    const badCursor = await rest(gateway, 'GET', '/evaluations?cursor=nonsense', undefined, asAdmin);
    expect([badCursor.status, badCursor.body.error]).toEqual([400, 'validation_error']);
  }, 60_000);

  it('cancels a running run: cells in flight are aborted and recorded cancelled, finished cells kept, a second cancel is 409', async () => {
    fake.latencyMs = 300;
    const started = await checked('POST', '/evaluations', '/evaluations', {
      dataset_id: datasetId,
      prompts: [{ name: 'say', version: 1 }],
      model_ids: [CHAT_MODEL],
      scorers: [{ type: 'exact_match' }],
    });
    const id = (started.body as Evaluation).id;
    await poll(
      () => getRun(id),
      (run) => run.progress.completed >= 4,
      20_000,
    );
    const cancelled = await checked('POST', `/evaluations/${id}/cancel`, '/evaluations/{evaluation_id}/cancel');
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const kept = cancelled.body.progress.completed as number;
    expect(kept).toBeLessThan(20);

    const again = await checked('POST', `/evaluations/${id}/cancel`, '/evaluations/{evaluation_id}/cancel');
    expect([again.status, again.body.error]).toEqual([409, 'conflict']);
    // Nothing more is recorded once cancelled; the aborted cells' generations are `cancelled` rows.
    const rows = await poll(
      async () => (await walkGenerations(gateway, { limit: 200 }, asAdmin)).filter((row) => row.evaluation_id === id),
      (found) => found.length >= kept && found.every((row) => row.status !== undefined),
      10_000,
    );
    const after = await getRun(id);
    expect(after.progress.completed).toBe(kept);
    expect(await allResults(id)).toHaveLength(kept);
    expect(rows.filter((row) => row.status === 'succeeded')).toHaveLength(kept);
    expect(rows.filter((row) => row.status === 'cancelled').length).toBeGreaterThanOrEqual(1);
    expect(rows.filter((row) => row.status === 'cancelled').length).toBeLessThanOrEqual(4);
  }, 60_000);

  it('ends a run failed with budget_exceeded when a budget runs out, keeping the cells it finished', async () => {
    // About six cells' worst case (prompt + max_tokens at tiny-chat's prices) fit Bob's budget.
    const budget = await rest(gateway, 'POST', '/budgets', { scope: 'key', subject: 'bob', limit_usd: 0.001, period: 'total' }, asAdmin);
    expect(budget.status).toBe(201);
    try {
      const started = await checked(
        'POST',
        '/evaluations',
        '/evaluations',
        {
          dataset_id: datasetId,
          prompts: [{ name: 'say', version: 1 }],
          model_ids: [CHAT_MODEL],
          scorers: [{ type: 'exact_match' }],
          max_tokens: 10,
        },
        asBob,
      );
      expect(started.status).toBe(202);
      const run = await waitForEnd((started.body as Evaluation).id);
      expect(run).toMatchObject({ status: 'failed', error: 'budget_exceeded' });
      expect(run.progress.completed).toBeGreaterThan(0);
      expect(run.progress.completed).toBeLessThan(CASES);
      expect(run.variants[0]!.completed).toBe(run.progress.completed);
      const results = await allResults(run.id);
      expect(results).toHaveLength(run.progress.completed);
      expect(results.every((result) => result.passed && result.error === null)).toBe(true);
      // Every candidate that ran is in the ledger and charged: nothing held, spend within the limit.
      const after = await rest(gateway, 'GET', `/budgets/${budget.body.id}`, undefined, asAdmin);
      expect(after.body.reserved_usd).toBe(0);
      expect(after.body.spent_usd).toBeLessThanOrEqual(0.001);
      const rows = (await walkGenerations(gateway, { limit: 200 }, asAdmin)).filter((row) => row.evaluation_id === run.id);
      expect(rows.filter((row) => row.status === 'succeeded')).toHaveLength(run.progress.completed);
      expect(after.body.spent_usd).toBeCloseTo(
        rows.reduce((sum, row) => sum + row.cost_usd, 0),
        12,
      );
    } finally {
      await rest(gateway, 'DELETE', `/budgets/${budget.body.id}`, undefined, asAdmin);
    }
  }, 60_000);

  it('refuses bad runs before anything runs: 404 for unknown dataset, prompt, version or model, 400 for bad scorers and sizes', async () => {
    const base = {
      dataset_id: datasetId,
      prompts: [{ name: 'say' }],
      model_ids: [CHAT_MODEL],
      scorers: [{ type: 'exact_match' }],
    };
    const expectRefused = async (body: unknown, status: number, error: string, details?: RegExp) => {
      const response = await checked('POST', '/evaluations', '/evaluations', body);
      expect([response.status, response.body.error]).toEqual([status, error]);
      if (details) expect(`${response.body.message} ${response.body.details ?? ''}`).toMatch(details);
    };
    const before = fake.requests.length;
    await expectRefused({ ...base, dataset_id: 'ds_missing' }, 404, 'dataset_not_found');
    await expectRefused({ ...base, prompts: [{ name: 'nope' }] }, 404, 'prompt_not_found');
    await expectRefused({ ...base, prompts: [{ name: 'say', version: 9 }] }, 404, 'prompt_not_found');
    await expectRefused({ ...base, model_ids: ['no-such-model'] }, 404, 'model_not_found');
    await expectRefused({ ...base, scorers: [{ type: 'llm_judge', judge_model_id: 'no-such-judge' }] }, 404, 'model_not_found');
    await expectRefused({ ...base, scorers: [{ type: 'regex', value: '([a-z' }] }, 400, 'validation_error', /regex|regular expression/i);
    await expectRefused({ ...base, scorers: [{ type: 'llm_judge' }] }, 400, 'validation_error', /judge_model_id/);
    await expectRefused(
      {
        ...base,
        scorers: [
          { type: 'contains', value: 'a' },
          { type: 'contains', value: 'b' },
        ],
      },
      400,
      'validation_error',
      /contains/,
    );
    await expectRefused({ ...base, scorers: [] }, 400, 'validation_error');
    await expectRefused({ ...base, scorers: [{ type: 'telepathy' }] }, 400, 'validation_error');
    await expectRefused({ ...base, model_ids: [CHAT_MODEL, CHAT_MODEL] }, 400, 'validation_error', /twice/);
    await expectRefused({ ...base, model_ids: Array.from({ length: 11 }, () => CHAT_MODEL) }, 400, 'validation_error');
    await expectRefused({ ...base, prompts: Array.from({ length: 11 }, () => ({ name: 'say' })) }, 400, 'validation_error');
    await expectRefused({ ...base, max_tokens: 0 }, 400, 'validation_error', /max_tokens/);
    await expectRefused({ ...base, name: 'x'.repeat(201) }, 400, 'validation_error', /name/);
    expect(fake.requests.length).toBe(before);
  });
});
