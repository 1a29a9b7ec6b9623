import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { expectToMatchComponentSchema, expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { freePort, poll } from '../support/polling';

const API_KEY = 'sk-rest-contract-secret-4242';
const FINE_TUNE_ID = 'ft:gpt-4o-mini:acme::abc123';
// gpt-4o-mini in catalog/default-models.json: USD per million tokens.
const MINI_PRICE = { input: 0.15, output: 0.6 };
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** A JavaScript stack frame: "at fn (file.ts:1:2)" or "at file.js:1:2". */
const stackFrame = /\bat\s+(\S+\s+\()?[^\s()]+:\d+:\d+\)?/;
const errorResponseKeys = ['error', 'message', 'details', 'timestamp'];

type ContractPath = '/health' | '/status' | '/ready' | '/models' | '/models/{model_id}' | '/generate' | '/generate/batch';

/**
 * A non-2xx answer as a user sees it: the status, JSON, exactly an ErrorResponse (no `errors`, no stack),
 * the error code, and no secret anywhere in it.
 */
function expectErrorResponse(response: RestResponse, status: number, code: string): { message: string; details: string } {
  const raw = typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
  expect(raw).not.toContain(API_KEY);
  expect(raw).not.toMatch(stackFrame);
  expect(raw).not.toContain('stacktrace');
  expect(response.headers.get('content-type')).toMatch(/^application\/json\b/);
  expect(response.status).toBe(status);
  expect(typeof response.body).toBe('object');
  const keys = Object.keys(response.body ?? {});
  expect(keys.filter((key) => !errorResponseKeys.includes(key))).toEqual([]);
  expect(response.body).toEqual({
    error: code,
    message: expect.any(String),
    timestamp: expect.stringMatching(isoTimestamp),
    ...(keys.includes('details') ? { details: expect.any(String) } : {}),
  });
  expect(response.body.message.trim().length).toBeGreaterThan(0);
  return { message: response.body.message, details: response.body.details ?? '' };
}

/** `text` mentions `bound` as a number of its own (2 in "<= 2" but not in "2048" or "0.2"). */
const mentionsNumber = (bound: number): RegExp => new RegExp(`(?<![\\d.])${String(bound).replace('.', '\\.')}(?![\\d]|\\.\\d)`);

/**
 * A 400 validation_error, documented for the operation, whose message or details name the field and, when
 * given, the bound or the expected type (in GraphQL's words: the same message /graphql gives).
 */
function expectValidationError(response: RestResponse, path: ContractPath, field: string, bound?: number | string): void {
  expectToMatchContract(response, path, 'post');
  const { message, details } = expectErrorResponse(response, 400, 'validation_error');
  const text = `${message} ${details}`;
  expect(text).toContain(field);
  if (typeof bound === 'number') expect(text).toMatch(mentionsNumber(bound));
  else if (bound !== undefined) expect(text).toContain(bound);
}

function expectOk(response: RestResponse, path: ContractPath, method: 'get' | 'post'): any {
  expectToMatchContract(response, path, method);
  expect(response.status).toBe(200);
  return response.body;
}

const generationRequests = (fake: FakeUpstream) =>
  fake.requests.filter((r) => r.method === 'POST' && (r.path === '/v1/chat/completions' || r.path === '/v1/completions'));

describe('REST /api/v1 against an OpenAI upstream', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({
      env: { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: fake.url, UPSTREAM_TIMEOUT_MS: '500', UPSTREAM_MAX_RETRIES: '0' },
    });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  describe('GET /health', () => {
    it('answers 200 healthy with the version', async () => {
      const body = expectOk(await rest(gateway, 'GET', '/health'), '/health', 'get');
      expect(body).toMatchObject({ status: 'healthy', version: '1.0.0', timestamp: expect.stringMatching(isoTimestamp) });
    });

    it('answers POST with 405 method_not_allowed and Allow: GET', async () => {
      const response = await rest(gateway, 'POST', '/health', {});
      expectToMatchContract(response, '/health', 'get');
      expectErrorResponse(response, 405, 'method_not_allowed');
      expect(response.headers.get('allow')).toBe('GET');
    });
  });

  describe('GET /status', () => {
    it('answers 200 with the system, environment and the OpenAI provider up', async () => {
      const body = expectOk(await rest(gateway, 'GET', '/status'), '/status', 'get');
      expect(body.status).toBe('healthy');
      expect(body.system.memory.total).toBeGreaterThan(0);
      expect(body.providers).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'openai', state: 'up' })]));
      expect(JSON.stringify(body)).not.toContain(API_KEY);
    });
  });

  describe('GET /ready', () => {
    it('answers 200 ready with every check passing', async () => {
      const body = expectOk(await rest(gateway, 'GET', '/ready'), '/ready', 'get');
      expect(body.ready).toBe(true);
      expect(body.checks).toEqual({
        memory_available: true,
        disk_available: true,
        providers_initialized: true,
        ledger_reachable: true,
        endpoints_available: true,
      });
    });
  });

  describe('GET /models', () => {
    it('answers 200 with the catalog models available and the count', async () => {
      const body = expectOk(await rest(gateway, 'GET', '/models'), '/models', 'get');
      expect(body.count).toBe(body.models.length);
      expect(body.models).toEqual(
        expect.arrayContaining([expect.objectContaining({ id: 'gpt-4o', type: 'commercial', provider: 'openai', status: 'available' })]),
      );
    });

    it('lists the same models with the same statuses as the GraphQL models query', async () => {
      const response = await rest(gateway, 'GET', '/models');
      expectToMatchContract(response, '/models', 'get');
      const graphql = await gateway.graphql('{ models { models { id status } } }');
      expect(graphql.body.errors).toBeUndefined();
      const fromRest = response.body.models.map((m: any) => ({ id: m.id, status: m.status }));
      expect(fromRest).toEqual(graphql.body.data.models.models);
    });
  });

  describe('GET /models/{model_id}', () => {
    it('answers 200 with a catalog model', async () => {
      const body = expectOk(await rest(gateway, 'GET', '/models/gpt-4o'), '/models/{model_id}', 'get');
      expect(body.model).toMatchObject({
        id: 'gpt-4o',
        name: 'GPT-4o',
        type: 'commercial',
        provider: 'openai',
        status: 'available',
        context_length: 128000,
      });
      expect(body.timestamp).toMatch(isoTimestamp);
    });

    it('answers 200 with a fine-tune of the account, its id URL-encoded in the path', async () => {
      const listed = await poll(
        () => rest(gateway, 'GET', '/models'),
        (response) => response.body.models?.some((m: any) => m.id === FINE_TUNE_ID),
      );
      expectToMatchContract(listed, '/models', 'get');
      const response = await rest(gateway, 'GET', `/models/${encodeURIComponent(FINE_TUNE_ID)}`);
      const body = expectOk(response, '/models/{model_id}', 'get');
      expect(body.model).toMatchObject({ id: FINE_TUNE_ID, type: 'fine-tuned', status: 'available', base_model: 'gpt-4o-mini' });
    });

    it('answers 404 model_not_found for an unknown model', async () => {
      const response = await rest(gateway, 'GET', '/models/nope');
      expectToMatchContract(response, '/models/{model_id}', 'get');
      const { message, details } = expectErrorResponse(response, 404, 'model_not_found');
      expect(`${message} ${details}`).toContain('nope');
    });

    it.each(['%ZZ', '%E0%A4%A', '%ED%A0%80'])(
      'answers 404 model_not_found for an id that is not valid percent-encoding (%s)',
      async (segment) => {
        const response = await rest(gateway, 'GET', `/models/${segment}`);
        expectToMatchContract(response, '/models/{model_id}', 'get');
        expectErrorResponse(response, 404, 'model_not_found');
      },
    );

    it('answers DELETE with 405 method_not_allowed and Allow: GET', async () => {
      const response = await rest(gateway, 'DELETE', '/models/gpt-4o');
      expectToMatchContract(response, '/models/{model_id}', 'get');
      expectErrorResponse(response, 405, 'method_not_allowed');
      expect(response.headers.get('allow')).toBe('GET');
    });
  });

  describe('POST /generate', () => {
    const generate = (body: unknown, headers?: Record<string, string>) => rest(gateway, 'POST', '/generate', body, headers);

    it('answers 200 with the upstream text, default parameters, token metrics and metadata', async () => {
      const prompt = 'Explain what a gateway does';
      const response = await generate({ prompt, model_id: 'gpt-4o-mini' });
      const body = expectOk(response, '/generate', 'post');
      const reply = expectedReply(prompt, 100);
      expect(body.text).toBe(reply.text);
      expect(body.model_id).toBe('gpt-4o-mini');
      expect(body.prompt).toBe(prompt);
      expect(body.parameters).toEqual({ max_tokens: 100, temperature: 0.7, top_p: 1 });
      expect(body.metrics).toEqual({
        latency_ms: expect.any(Number),
        input_tokens: reply.promptTokens,
        output_tokens: reply.completionTokens,
        total_tokens: reply.promptTokens + reply.completionTokens,
      });
      expect(body.metadata).toEqual({
        generation_id: expect.stringMatching(/^gen_[0-9a-z]{26}$/),
        finish_reason: 'stop',
        provider: 'openai',
        upstream_model: 'gpt-4o-mini',
        request_id: response.headers.get('x-request-id'),
        upstream_request_id: expect.stringMatching(/^req_\d+$/),
        token_source: 'upstream',
        cost_usd: { input: expect.any(Number), output: expect.any(Number), total: expect.any(Number) },
        attempts: [{ model_id: 'gpt-4o-mini', provider: 'openai', error: null, latency_ms: expect.any(Number) }],
      });
      expect(body.metadata.cost_usd.input).toBeCloseTo((reply.promptTokens * MINI_PRICE.input) / 1e6, 12);
      expect(body.metadata.cost_usd.output).toBeCloseTo((reply.completionTokens * MINI_PRICE.output) / 1e6, 12);
      expect(body.timestamp).toMatch(isoTimestamp);
    });

    it('answers 400 validation_error for a body that is not valid JSON', async () => {
      expectValidationError(await generate('{"prompt": "hi",'), '/generate', 'JSON');
    });

    it.each([
      ['a JSON array', [{ prompt: 'hi', model_id: 'gpt-4o-mini' }]],
      ['a JSON string', 'just a string'],
    ])('answers 400 validation_error for a body that is %s', async (_name, body) => {
      expectValidationError(await generate(JSON.stringify(body)), '/generate', 'object');
    });

    it.each([
      ['prompt', { model_id: 'gpt-4o-mini' }],
      ['model_id', { prompt: 'hi' }],
    ])('answers 400 validation_error naming %s when it is missing', async (field, body) => {
      expectValidationError(await generate(body), '/generate', field, 'required');
    });

    it.each([
      ['prompt', 123, 'String'],
      ['max_tokens', '5', 'Int'],
      ['max_tokens', true, 'Int'],
      ['max_tokens', 2 ** 31, 'Int'],
      ['seed', 0.5, 'Int'],
      ['temperature', 'hot', 'Float'],
      ['top_p', '1', 'Float'],
    ])('answers 400 validation_error naming %s and its GraphQL type when it is %p', async (field, value, type) => {
      const response = await generate({ prompt: 'hi', model_id: 'gpt-4o-mini', [field]: value });
      expectValidationError(response, '/generate', field, type);
      expect(generationRequests(fake)).toEqual([]);
    });

    it.each([
      ['max_tokens', 0, 1],
      ['max_tokens', 2049, 2048],
      ['max_tokens', 1.5, 'non-integer'],
      ['temperature', -0.1, 0],
      ['temperature', 2.1, 2],
      ['top_p', -0.1, 0],
      ['top_p', 1.1, 1],
    ])('answers 400 validation_error naming %s and its bound when it is %p', async (field, value, bound) => {
      const response = await generate({ prompt: 'hi', model_id: 'gpt-4o-mini', [field]: value });
      expectValidationError(response, '/generate', field, bound);
      expect(generationRequests(fake)).toEqual([]);
    });

    it.each([
      ['max_tokens', 1],
      ['max_tokens', 2048],
      ['temperature', 0],
      ['temperature', 2],
      ['top_p', 0],
      ['top_p', 1],
    ])('answers 200 with %s at its bound %p, applied as given', async (field, value) => {
      const response = await generate({ prompt: 'bound check', model_id: 'gpt-4o-mini', [field]: value });
      const body = expectOk(response, '/generate', 'post');
      expect(body.parameters[field]).toBe(value);
    });

    it('answers 400 validation_error naming prompt and the minimum for an empty prompt', async () => {
      expectValidationError(await generate({ prompt: '', model_id: 'gpt-4o-mini' }), '/generate', 'prompt', 1);
    });

    it('answers 400 validation_error naming prompt and the maximum for a prompt of 10001 characters', async () => {
      expectValidationError(await generate({ prompt: 'a'.repeat(10_001), model_id: 'gpt-4o-mini' }), '/generate', 'prompt', 10000);
    });

    it('answers 200 with the defaults for optional parameters sent as null, as GraphQL does', async () => {
      const response = await generate({
        prompt: 'nulls',
        model_id: 'gpt-4o-mini',
        max_tokens: null,
        temperature: null,
        top_p: null,
        seed: null,
      });
      const body = expectOk(response, '/generate', 'post');
      expect(body.parameters).toEqual({ max_tokens: 100, temperature: 0.7, top_p: 1 });
    });

    it('answers 200 and ignores body fields the operation does not take, __proto__ included', async () => {
      const response = await generate('{"prompt":"extras","model_id":"gpt-4o-mini","stream":true,"__proto__":{"max_tokens":0}}');
      const body = expectOk(response, '/generate', 'post');
      expect(body.parameters.max_tokens).toBe(100);
      expect(body.text).toBe(expectedReply('extras', 100).text);
    });

    it('takes parameters from the body only, not from the query string', async () => {
      const response = await rest(gateway, 'POST', '/generate?max_tokens=abc&model_id=nope', {
        prompt: 'query',
        model_id: 'gpt-4o-mini',
        max_tokens: 4,
      });
      const body = expectOk(response, '/generate', 'post');
      expect(body.parameters.max_tokens).toBe(4);
    });

    it('answers 200 for a one-character prompt', async () => {
      const body = expectOk(await generate({ prompt: 'a', model_id: 'gpt-4o-mini' }), '/generate', 'post');
      expect(body.text).toBe(expectedReply('a', 100).text);
    });

    it('answers 200 for a prompt of exactly 10000 characters', async () => {
      const prompt = 'a'.repeat(10_000);
      const body = expectOk(await generate({ prompt, model_id: 'gpt-4o-mini' }), '/generate', 'post');
      expect(body.prompt).toBe(prompt);
    });

    it('answers 404 model_not_found for an unknown model_id', async () => {
      const response = await generate({ prompt: 'hi', model_id: 'nope' });
      expectToMatchContract(response, '/generate', 'post');
      const { message, details } = expectErrorResponse(response, 404, 'model_not_found');
      expect(`${message} ${details}`).toContain('nope');
    });

    it('answers GET with 405 method_not_allowed and Allow: POST', async () => {
      const response = await rest(gateway, 'GET', '/generate');
      expectToMatchContract(response, '/generate', 'post');
      expectErrorResponse(response, 405, 'method_not_allowed');
      expect(response.headers.get('allow')).toBe('POST');
    });

    it('answers 413 payload_too_large for a body over 1 MiB, without calling the upstream', async () => {
      const response = await generate({ prompt: 'a'.repeat(1024 * 1024 + 1), model_id: 'gpt-4o-mini' });
      expectToMatchContract(response, '/generate', 'post');
      expectErrorResponse(response, 413, 'payload_too_large');
      expect(generationRequests(fake)).toEqual([]);
    });

    it('answers 502 upstream_error when the upstream answers HTTP 500', async () => {
      fake.queueBehaviours({ kind: 'status', status: 500 });
      const response = await generate({ prompt: 'hi', model_id: 'gpt-4o-mini' });
      expectToMatchContract(response, '/generate', 'post');
      expectErrorResponse(response, 502, 'upstream_error');
    });

    it('answers 504 upstream_timeout when the upstream does not answer in time', async () => {
      fake.queueBehaviours({ kind: 'timeout' });
      const response = await generate({ prompt: 'hi', model_id: 'gpt-4o-mini' });
      expectToMatchContract(response, '/generate', 'post');
      const { details } = expectErrorResponse(response, 504, 'upstream_timeout');
      expect(details).toMatch(/500\s*ms|time(d)?\s*out/i);
    });
  });

  describe('POST /generate/batch', () => {
    const batch = (body: unknown) => rest(gateway, 'POST', '/generate/batch', body);

    it('answers 200 with every result in order and the summed metrics', async () => {
      const prompts = ['What is AI?', 'Explain machine learning in simple words', 'Hello'];
      const body = expectOk(await batch({ prompts, model_id: 'gpt-4o-mini' }), '/generate/batch', 'post');
      expect(body.model_id).toBe('gpt-4o-mini');
      expect(body.parameters).toEqual({ max_tokens: 100, temperature: 0.7, top_p: 1 });
      expect(body.results.map((r: any) => r.index)).toEqual([0, 1, 2]);
      prompts.forEach((prompt, index) => {
        expect(body.results[index]).toMatchObject({ index, prompt, text: expectedReply(prompt, 100).text, success: true, error: null });
      });
      const replies = prompts.map((prompt) => expectedReply(prompt, 100));
      expect(body.metrics).toMatchObject({
        successful_generations: 3,
        failed_generations: 0,
        input_tokens: replies.reduce((sum, r) => sum + r.promptTokens, 0),
        output_tokens: replies.reduce((sum, r) => sum + r.completionTokens, 0),
      });
      expect(body.metrics.total_tokens).toBe(body.metrics.input_tokens + body.metrics.output_tokens);
      expect(body.metrics.total_latency_ms).toBeGreaterThanOrEqual(0);
    });

    it('answers 200 with the failing prompt marked success false, text null and an error, the others generated', async () => {
      fake.failPromptsContaining = 'FAIL';
      const prompts = ['first fine prompt', 'this one should FAIL', 'third fine prompt'];
      const response = await batch({ prompts, model_id: 'gpt-4o-mini' });
      const body = expectOk(response, '/generate/batch', 'post');
      const [first, failed, third] = body.results;
      expect(first).toMatchObject({ index: 0, success: true, text: expectedReply(prompts[0]!, 100).text, error: null });
      expect(third).toMatchObject({ index: 2, success: true, text: expectedReply(prompts[2]!, 100).text, error: null });
      expect(failed).toMatchObject({ index: 1, prompt: prompts[1], success: false, text: null, error: expect.any(String) });
      expect(failed.error.trim().length).toBeGreaterThan(0);
      expect(body.metrics).toMatchObject({ successful_generations: 2, failed_generations: 1 });
      expect(JSON.stringify(body)).not.toContain(API_KEY);
    });

    it('answers 400 validation_error for a body that is not valid JSON', async () => {
      expectValidationError(await batch('{"prompts": ['), '/generate/batch', 'JSON');
    });

    it.each([
      ['a JSON array', [{ prompts: ['hi'], model_id: 'gpt-4o-mini' }]],
      ['a JSON string', 'just a string'],
    ])('answers 400 validation_error for a body that is %s', async (_name, body) => {
      expectValidationError(await batch(JSON.stringify(body)), '/generate/batch', 'object');
    });

    it.each([
      ['prompts', { model_id: 'gpt-4o-mini' }],
      ['model_id', { prompts: ['hi'] }],
    ])('answers 400 validation_error naming %s when it is missing', async (field, body) => {
      expectValidationError(await batch(body), '/generate/batch', field, 'required');
    });

    it.each([
      ['prompts', 'a string', 'prompts', 'array'],
      ['prompts', [1, 2], 'prompts[0]', 'String'],
      ['max_tokens', '5', 'max_tokens', 'Int'],
      ['temperature', 'hot', 'temperature', 'Float'],
    ])('answers 400 validation_error when %s is %p, naming %s', async (field, value, named, type) => {
      const response = await batch({ prompts: ['hi'], model_id: 'gpt-4o-mini', [field]: value });
      expectValidationError(response, '/generate/batch', named, type);
      expect(generationRequests(fake)).toEqual([]);
    });

    it.each([
      ['prompts', [], 'prompts', 1],
      ['prompts', Array.from({ length: 11 }, (_, i) => `prompt ${i}`), 'prompts', 10],
      ['prompts', ['fine', ''], 'prompts[1]', 1],
      ['max_tokens', 0, 'max_tokens', 1],
      ['max_tokens', 2049, 'max_tokens', 2048],
      ['temperature', -0.1, 'temperature', 0],
      ['temperature', 2.1, 'temperature', 2],
      ['top_p', -0.1, 'top_p', 0],
      ['top_p', 1.1, 'top_p', 1],
    ])('answers 400 validation_error when %s is %p, naming %s and the bound', async (field, value, named, bound) => {
      const response = await batch({ prompts: ['hi'], model_id: 'gpt-4o-mini', [field]: value });
      expectValidationError(response, '/generate/batch', named, bound);
      expect(generationRequests(fake)).toEqual([]);
    });

    it.each([
      ['prompts', ['only one']],
      ['prompts', Array.from({ length: 10 }, (_, i) => `prompt number ${i}`)],
      ['max_tokens', 1],
      ['max_tokens', 2048],
      ['temperature', 0],
      ['temperature', 2],
      ['top_p', 0],
      ['top_p', 1],
    ])('answers 200 with %s at its bound %p', async (field, value) => {
      const response = await batch({ prompts: ['bound check'], model_id: 'gpt-4o-mini', [field]: value });
      const body = expectOk(response, '/generate/batch', 'post');
      if (field === 'prompts') expect(body.results).toHaveLength((value as string[]).length);
      else expect(body.parameters[field]).toBe(value);
      expect(body.results.every((r: any) => r.success)).toBe(true);
    });

    it('answers 404 model_not_found for an unknown model_id', async () => {
      const response = await batch({ prompts: ['hi'], model_id: 'nope' });
      expectToMatchContract(response, '/generate/batch', 'post');
      const { message, details } = expectErrorResponse(response, 404, 'model_not_found');
      expect(`${message} ${details}`).toContain('nope');
    });

    it('answers PUT with 405 method_not_allowed and Allow: POST', async () => {
      const response = await rest(gateway, 'PUT', '/generate/batch', { prompts: ['hi'], model_id: 'gpt-4o-mini' });
      expectToMatchContract(response, '/generate/batch', 'post');
      expectErrorResponse(response, 405, 'method_not_allowed');
      expect(response.headers.get('allow')).toBe('POST');
    });
  });

  describe('paths the contract does not document', () => {
    it.each([
      ['GET', '/nope'],
      ['POST', '/webhook'],
      ['GET', '/webhook'],
      ['GET', '/models/a/b'],
      ['GET', '/_service'],
      ['GET', '/_entities'],
      ['POST', '/_entities'],
      ['GET', '/generate_batch'],
      ['GET', '/model'],
    ])('answers %s %s with 404 not_found as an ErrorResponse', async (method, path) => {
      const response = await rest(gateway, method, path, method === 'POST' ? {} : undefined);
      expectToMatchComponentSchema(response, 'ErrorResponse');
      expectErrorResponse(response, 404, 'not_found');
    });
  });
});

describe('REST /api/v1 when the model cannot serve', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    const port = await freePort();
    gateway = await startGateway({
      env: { DISCOVERY_TIMEOUT_MS: '1000', UPSTREAM_TIMEOUT_MS: '500', UPSTREAM_MAX_RETRIES: '0' },
      catalog: {
        endpoints: [{ name: 'offline', base_url: `http://127.0.0.1:${port}/v1` }],
        models: [{ id: 'offline-chat', provider: 'offline', name: 'Offline chat' }],
      },
    });
  });
  afterAll(() => gateway.close());

  it('answers POST /generate with 503 model_unavailable naming OPENAI_API_KEY for gpt-4o without a key', async () => {
    const response = await rest(gateway, 'POST', '/generate', { prompt: 'hi', model_id: 'gpt-4o' });
    expectToMatchContract(response, '/generate', 'post');
    const { message, details } = expectErrorResponse(response, 503, 'model_unavailable');
    expect(`${message} ${details}`).toContain('OPENAI_API_KEY');
  });

  it('answers POST /generate with 503 model_unavailable for a model whose endpoint is unreachable', async () => {
    const response = await rest(gateway, 'POST', '/generate', { prompt: 'hi', model_id: 'offline-chat' });
    expectToMatchContract(response, '/generate', 'post');
    expectErrorResponse(response, 503, 'model_unavailable');
  });

  it('answers POST /generate/batch with 503 model_unavailable for gpt-4o without a key', async () => {
    const response = await rest(gateway, 'POST', '/generate/batch', { prompts: ['hi'], model_id: 'gpt-4o' });
    expectToMatchContract(response, '/generate/batch', 'post');
    expectErrorResponse(response, 503, 'model_unavailable');
  });
});

describe('REST /api/v1 when the gateway is not ready', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { READY_MIN_MEMORY_MB: '100000000' } });
  });
  afterAll(() => gateway.close());

  it('answers GET /ready with 503 and a ReadinessResponse saying ready false and memory unavailable', async () => {
    const response = await rest(gateway, 'GET', '/ready');
    expect(response.status).toBe(503);
    expectToMatchContract(response, '/ready', 'get');
    expect(response.body).toMatchObject({ ready: false, checks: { memory_available: false } });
    expect(response.body.timestamp).toMatch(isoTimestamp);
  });
});
