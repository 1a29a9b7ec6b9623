/**
 * Side-by-side comparison as its users meet it (issue 14): one prompt on 2 to 10 models at once over
 * REST (POST /generate/compare) and GraphQL (compare), each model's result in the order asked, the
 * fastest and the cheapest, a failing model failing only its own result, the whole request refused
 * before anything runs for an unknown model or a bad list, every generation in the ledger with source
 * `compare`, and the generate_batch rate limit. Two fake OpenAI-compatible upstreams, one per
 * endpoint, so each model can answer at its own speed; on the SQLite ledger and a real PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { expectedReply, type FakeUpstream, startFakeUpstream } from '../support/fake-openai-upstream';
import {
  ADMIN_KEY,
  bearer,
  type LedgerGeneration,
  type LedgerSetup,
  postgresLedgerSetup,
  sqliteLedgerSetup,
} from '../support/ledger-fixtures';
import { type RunningGateway, startGateway } from '../support/start-gateway';

/** On the `quick` endpoint: the dearer model. */
const QUICK_MODEL = 'quick-chat';
/** On the `slow` endpoint: the cheaper model. */
const SLOW_MODEL = 'slow-chat';
/** On the `quick` endpoint too, unpriced (costs 0). */
const FREE_MODEL = 'free-completion';

const QUICK_PRICE = { input_per_million: 3, output_per_million: 15 };
const SLOW_PRICE = { input_per_million: 0.5, output_per_million: 1.5 };

const catalogOn = (quick: FakeUpstream, slow: FakeUpstream) => ({
  endpoints: [
    { name: 'quick', base_url: quick.url },
    { name: 'slow', base_url: slow.url },
  ],
  models: [
    { id: QUICK_MODEL, provider: 'quick', api: 'chat', context_length: 4096, pricing: QUICK_PRICE },
    { id: SLOW_MODEL, provider: 'slow', api: 'chat', context_length: 4096, pricing: SLOW_PRICE },
    { id: FREE_MODEL, provider: 'quick', api: 'completion', context_length: 4096 },
  ],
});

const asAdmin = bearer(ADMIN_KEY);

interface CompareResult {
  model_id: string;
  success: boolean;
  text: string | null;
  error: string | null;
  metrics: { latency_ms: number; input_tokens: number; output_tokens: number; total_tokens: number };
  cost_usd: number;
  generation_id: string | null;
}

interface CompareResponse {
  prompt: string;
  results: CompareResult[];
  fastest_model_id: string | null;
  cheapest_model_id: string | null;
  timestamp: string;
}

const COMPARE_FIELDS = `prompt results { model_id success text error metrics { latency_ms input_tokens output_tokens total_tokens }
  cost_usd generation_id } fastest_model_id cheapest_model_id timestamp`;
const compareMutation = `mutation ($prompt: String!, $model_ids: [String!]!, $max_tokens: Int, $temperature: Float, $top_p: Float) {
  compare(prompt: $prompt, model_ids: $model_ids, max_tokens: $max_tokens, temperature: $temperature, top_p: $top_p) { ${COMPARE_FIELDS} }
}`;

/** Generation requests (not model listings) a fake received. */
const generationCalls = (fake: FakeUpstream) => fake.requests.filter((request) => request.method === 'POST');

/** What a model costs for the fake's answer to `prompt`, from the catalog price. */
function expectedCost(price: typeof QUICK_PRICE, prompt: string, maxTokens: number): number {
  const reply = expectedReply(prompt, maxTokens);
  return (reply.promptTokens * price.input_per_million + reply.completionTokens * price.output_per_million) / 1_000_000;
}

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('side-by-side compare on $name', (setup) => {
  let quick: FakeUpstream;
  let slow: FakeUpstream;
  let gateway: RunningGateway;

  /** POST /generate/compare, checked against the contract; a fresh X-Request-Id unless one is given. */
  const compare = async (body: unknown, headers: Record<string, string> = {}): Promise<RestResponse> => {
    const response = await rest(gateway, 'POST', '/generate/compare', body, { ...asAdmin, 'x-request-id': randomUUID(), ...headers });
    expectToMatchContract(response, '/generate/compare', 'post');
    return response;
  };
  const compareOk = async (body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<CompareResponse> => {
    const response = await compare(body, headers);
    expect([response.status, response.body.error]).toEqual([200, undefined]);
    return response.body as CompareResponse;
  };
  const ledgerRow = async (generationId: string): Promise<LedgerGeneration> => {
    const response = await rest(gateway, 'GET', `/generations/${generationId}`, undefined, asAdmin);
    expectToMatchContract(response, '/generations/{generation_id}', 'get');
    expect(response.status).toBe(200);
    return response.body as LedgerGeneration;
  };
  const noGenerationCalls = () => expect([...generationCalls(quick), ...generationCalls(slow)]).toEqual([]);

  beforeAll(async () => {
    await setup.setUp();
    quick = await startFakeUpstream({ models: [QUICK_MODEL, FREE_MODEL] });
    slow = await startFakeUpstream({ models: [SLOW_MODEL] });
    const ledger = await setup.freshLedger();
    gateway = await startGateway({ catalog: catalogOn(quick, slow), env: { ...ledger.env, API_KEYS: ADMIN_KEY } });
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    await quick?.close();
    await slow?.close();
    await setup.tearDown();
  });
  beforeEach(() => {
    quick.reset();
    slow.reset();
  });

  it("answers each model's text, metrics, cost and generation id in the order asked, over REST", async () => {
    const prompt = 'Name three primary colours please';
    const answer = await compareOk({ prompt, model_ids: [SLOW_MODEL, QUICK_MODEL, FREE_MODEL], max_tokens: 4, temperature: 0 });

    expect(answer.prompt).toBe(prompt);
    expect(answer.results.map((result) => result.model_id)).toEqual([SLOW_MODEL, QUICK_MODEL, FREE_MODEL]);
    const reply = expectedReply(prompt, 4);
    for (const result of answer.results) {
      expect(result).toMatchObject({ success: true, text: reply.text, error: null });
      expect(result.metrics).toMatchObject({
        input_tokens: reply.promptTokens,
        output_tokens: reply.completionTokens,
        total_tokens: reply.promptTokens + reply.completionTokens,
      });
      expect(result.generation_id).toEqual(expect.any(String));
    }
    const [slowResult, quickResult, freeResult] = answer.results;
    expect(slowResult!.cost_usd).toBeCloseTo(expectedCost(SLOW_PRICE, prompt, 4), 10);
    expect(quickResult!.cost_usd).toBeCloseTo(expectedCost(QUICK_PRICE, prompt, 4), 10);
    expect(freeResult!.cost_usd).toBe(0);
    expect(answer.cheapest_model_id).toBe(FREE_MODEL);
    expect(answer.results.map((result) => result.model_id)).toContain(answer.fastest_model_id);
    expect(Date.parse(answer.timestamp)).not.toBeNaN();
    // Every model got the same prompt and parameters.
    const sent = [...generationCalls(quick), ...generationCalls(slow)].map((request) => request.body);
    expect(sent).toHaveLength(3);
    for (const body of sent) expect(body).toMatchObject({ max_tokens: 4, temperature: 0 });
  });

  it('runs the models concurrently: the slower model is asked before the quicker one has answered', async () => {
    // Far apart, so a loaded machine that delays the quick answer by a few hundred ms cannot swap them.
    quick.latencyMs = 300;
    slow.latencyMs = 1_200;
    const answer = await compareOk({ prompt: 'Which is faster?', model_ids: [SLOW_MODEL, QUICK_MODEL] });

    const [quickCall] = generationCalls(quick);
    const [slowCall] = generationCalls(slow);
    // Run one after the other, the second request would arrive at least 300 ms after the first.
    expect(Math.abs(quickCall!.receivedAt - slowCall!.receivedAt)).toBeLessThan(300);
    expect(answer.results.map((result) => result.success)).toEqual([true, true]);
    expect(answer.results[0]!.metrics.latency_ms).toBeGreaterThanOrEqual(1_200);
    expect(answer.results[1]!.metrics.latency_ms).toBeGreaterThanOrEqual(300);
    // The quick model is the dearer one: fastest and cheapest are different models.
    expect(answer.fastest_model_id).toBe(QUICK_MODEL);
    expect(answer.cheapest_model_id).toBe(SLOW_MODEL);
  });

  it("records every model's generation in the ledger with source compare and the request's id", async () => {
    const requestId = `compare-${randomUUID()}`;
    const prompt = 'Ledger me twice';
    const answer = await compareOk({ prompt, model_ids: [QUICK_MODEL, SLOW_MODEL], max_tokens: 5 }, { 'x-request-id': requestId });

    for (const result of answer.results) {
      const row = await ledgerRow(result.generation_id!);
      expect(row).toMatchObject({
        id: result.generation_id,
        request_id: requestId,
        source: 'compare',
        model_id: result.model_id,
        status: 'succeeded',
        error: null,
        prompt,
        text: result.text,
        prompt_ref: null,
        evaluation_id: null,
        parameters: { max_tokens: 5, temperature: 0.7, top_p: 1 },
      });
      expect(row.metrics).toMatchObject({ input_tokens: result.metrics.input_tokens, output_tokens: result.metrics.output_tokens });
      expect(row.cost_usd).toBeCloseTo(result.cost_usd, 10);
    }
  });

  it('answers the same comparison over GraphQL, snake_case', async () => {
    quick.latencyMs = 30;
    slow.latencyMs = 600;
    const prompt = 'Same over GraphQL';
    const response = await gateway.graphql<{ compare: CompareResponse }>(
      compareMutation,
      { prompt, model_ids: [QUICK_MODEL, SLOW_MODEL], max_tokens: 3 },
      asAdmin,
    );
    expect(response.body.errors).toBeUndefined();
    const answer = response.body.data!.compare;
    expect(answer.results.map(({ model_id, success, text }) => ({ model_id, success, text }))).toEqual([
      { model_id: QUICK_MODEL, success: true, text: expectedReply(prompt, 3).text },
      { model_id: SLOW_MODEL, success: true, text: expectedReply(prompt, 3).text },
    ]);
    expect(answer.fastest_model_id).toBe(QUICK_MODEL);
    expect(answer.cheapest_model_id).toBe(SLOW_MODEL);
    expect((await ledgerRow(answer.results[1]!.generation_id!)).source).toBe('compare');
  });

  it("answers a failing model as its own result, with its ledger row, and the others' as usual", async () => {
    slow.defaultBehaviour = { kind: 'status', status: 500 };
    const answer = await compareOk({ prompt: 'One of us fails', model_ids: [SLOW_MODEL, QUICK_MODEL] });

    const [failed, succeeded] = answer.results;
    expect(failed).toMatchObject({
      model_id: SLOW_MODEL,
      success: false,
      text: null,
      metrics: { latency_ms: 0, input_tokens: 0, output_tokens: 0, total_tokens: 0 },
      cost_usd: 0,
    });
    expect(failed!.error).toMatch(/The provider of model "slow-chat" failed: slow answered HTTP 500/);
    expect(failed!.generation_id).toEqual(expect.any(String));
    expect(await ledgerRow(failed!.generation_id!)).toMatchObject({
      source: 'compare',
      model_id: SLOW_MODEL,
      status: 'failed',
      error: 'upstream_error',
    });
    expect(succeeded).toMatchObject({ model_id: QUICK_MODEL, success: true, error: null });
    expect(answer.fastest_model_id).toBe(QUICK_MODEL);
    expect(answer.cheapest_model_id).toBe(QUICK_MODEL);
  });

  it('names no fastest or cheapest model when every model failed', async () => {
    quick.defaultBehaviour = { kind: 'status', status: 500 };
    slow.defaultBehaviour = { kind: 'status', status: 503 };
    const answer = await compareOk({ prompt: 'We all fail', model_ids: [QUICK_MODEL, SLOW_MODEL] });
    expect(answer.results.map((result) => result.success)).toEqual([false, false]);
    expect(answer.fastest_model_id).toBeNull();
    expect(answer.cheapest_model_id).toBeNull();
  });

  it("answers a budget's refusal as that model's own result, without a ledger row or an upstream call", async () => {
    const created = await rest(
      gateway,
      'POST',
      '/budgets',
      { scope: 'global', model_id: QUICK_MODEL, limit_usd: 0, period: 'total' },
      asAdmin,
    );
    expect(created.status).toBe(201);
    try {
      const answer = await compareOk({ prompt: 'The budget says no', model_ids: [QUICK_MODEL, SLOW_MODEL] });
      const [refused, succeeded] = answer.results;
      expect(refused).toMatchObject({ model_id: QUICK_MODEL, success: false, text: null, cost_usd: 0, generation_id: null });
      expect(refused!.error).toMatch(/exceed a budget/);
      expect(succeeded).toMatchObject({ model_id: SLOW_MODEL, success: true });
      expect(generationCalls(quick)).toEqual([]);
      expect(generationCalls(slow)).toHaveLength(1);
      expect(answer.cheapest_model_id).toBe(SLOW_MODEL);
    } finally {
      expect((await rest(gateway, 'DELETE', `/budgets/${created.body.id}`, undefined, asAdmin)).status).toBe(204);
    }
  });

  it('refuses the whole request with 404 model_not_found for an unknown model, before any model runs', async () => {
    const response = await compare({ prompt: 'Hello', model_ids: [QUICK_MODEL, 'no-such-model', SLOW_MODEL] });
    expect(response.status).toBe(404);
    expect(response.body).toMatchObject({ error: 'model_not_found', message: 'Model "no-such-model" was not found' });

    const graphql = await gateway.graphql(compareMutation, { prompt: 'Hello', model_ids: ['no-such-model', QUICK_MODEL] }, asAdmin);
    expect(graphql.body.errors?.[0]?.extensions).toMatchObject({ code: 'model_not_found' });
    noGenerationCalls();
  });

  it.each<[string, unknown, RegExp]>([
    ['one model', [QUICK_MODEL], /between 2 and 10 items, got 1/],
    ['no model', [], /between 2 and 10 items, got 0/],
    ['eleven models', Array.from({ length: 11 }, (_, index) => `model-${index}`), /between 2 and 10 items, got 11/],
    ['a model twice', [QUICK_MODEL, SLOW_MODEL, QUICK_MODEL], /"quick-chat" is listed twice/],
    ['an empty model id', [QUICK_MODEL, ' '], /model_id must not be empty/],
  ])('refuses %s with 400 validation_error, before any model runs', async (_case, modelIds, details) => {
    const response = await compare({ prompt: 'Hello', model_ids: modelIds });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'validation_error' });
    expect(response.body.details).toMatch(details);

    const graphql = await gateway.graphql(compareMutation, { prompt: 'Hello', model_ids: modelIds }, asAdmin);
    expect(graphql.body.errors?.[0]?.extensions).toMatchObject({ code: 'validation_error', details: expect.stringMatching(details) });
    noGenerationCalls();
  });

  it('refuses an invalid prompt or parameter with 400 for the whole request, and a missing field', async () => {
    for (const [body, details] of [
      [{ prompt: '', model_ids: [QUICK_MODEL, SLOW_MODEL] }, /prompt must be between 1 and 10000 characters/],
      [{ prompt: 'Hi', model_ids: [QUICK_MODEL, SLOW_MODEL], max_tokens: 0 }, /max_tokens must be between 1 and 2048/],
      [{ prompt: 'Hi', model_ids: [QUICK_MODEL, SLOW_MODEL], temperature: 3 }, /temperature must be between 0 and 2/],
      [{ prompt: 'Hi', model_ids: [QUICK_MODEL, SLOW_MODEL], top_p: -1 }, /top_p must be between 0 and 1/],
      [{ prompt: 'Hi' }, /model_ids/],
    ] as const) {
      const response = await compare(body);
      expect([response.status, response.body.error]).toEqual([400, 'validation_error']);
      expect(response.body.details ?? response.body.message).toMatch(details);
    }
    noGenerationCalls();
  });
});

describe('the rate limit of compare', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [QUICK_MODEL, SLOW_MODEL, FREE_MODEL] });
    gateway = await startGateway({
      catalog: catalogOn(fake, fake),
      env: { API_KEYS: ADMIN_KEY, RATE_LIMIT_GENERATE: '100', RATE_LIMIT_GENERATE_BATCH: '2', RATE_LIMIT_DEFAULT: '1000' },
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });

  it('counts as generate_batch: the batch limit applies, and a refused comparison runs no model', async () => {
    const body = { prompt: 'Count me', model_ids: [QUICK_MODEL, SLOW_MODEL] };
    for (let call = 1; call <= 2; call++) {
      const response = await rest(gateway, 'POST', '/generate/compare', body, asAdmin);
      expectToMatchContract(response, '/generate/compare', 'post');
      expect(response.status).toBe(200);
      expect(response.headers.get('x-ratelimit-limit')).toBe('2');
      expect(response.headers.get('x-ratelimit-remaining')).toBe(String(2 - call));
    }
    const callsBefore = generationCalls(fake).length;
    const refused = await rest(gateway, 'POST', '/generate/compare', body, asAdmin);
    expectToMatchContract(refused, '/generate/compare', 'post');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: 'rate_limit_exceeded' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(generationCalls(fake)).toHaveLength(callsBefore);

    const graphql = await gateway.graphql(compareMutation, body, asAdmin);
    expect(graphql.body.errors?.[0]?.extensions).toMatchObject({ code: 'rate_limit_exceeded' });
    // Not the generate limit (100): a plain generate is still admitted.
    const generate = await rest(gateway, 'POST', '/generate', { prompt: 'Still fine', model_id: QUICK_MODEL }, asAdmin);
    expect(generate.status).toBe(200);
    expect(generate.headers.get('x-ratelimit-limit')).toBe('100');
  });
});
