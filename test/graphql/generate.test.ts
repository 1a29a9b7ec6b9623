import { countTokens as countO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { GenerateDocument, type GenerateMutation, type GenerateMutationVariables } from '../generated/graphql';
import { expectedReply, startFakeUpstream, type FakeUpstream, type RecordedRequest } from '../support/fake-openai-upstream';
import { startGateway, type GraphQLResult, type RunningGateway } from '../support/start-gateway';

const API_KEY = 'sk-test-secret-key-123';
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** A JavaScript stack frame: "at fn (file.ts:1:2)" or "at file.js:1:2". */
const stackFrame = /\bat\s+(\S+\s+\()?[^\s()]+:\d+:\d+\)?/;

// gpt-4o-mini in catalog/default-models.json: USD per million tokens.
const MINI_PRICE = { input: 0.15, output: 0.6 };
// OpenAI's chat framing for one user message, as the gateway counts it.
const CHAT_FRAMING_TOKENS = 7;

type Generated = GenerateMutation['generate'];

function generate(
  gateway: RunningGateway,
  variables: Partial<GenerateMutationVariables>,
  headers?: Record<string, string>,
): Promise<GraphQLResult<GenerateMutation>> {
  return gateway.execute(GenerateDocument, { prompt: 'Hello there, gateway', model_id: 'gpt-4o-mini', ...variables }, headers);
}

const generationRequests = (fake: FakeUpstream): RecordedRequest[] =>
  fake.requests.filter((r) => r.method === 'POST' && (r.path === '/v1/chat/completions' || r.path === '/v1/completions'));

function expectSuccess(result: GraphQLResult<GenerateMutation>): Generated {
  expect(result.body.errors).toBeUndefined();
  expect(result.status).toBe(200);
  return result.body.data!.generate;
}

/**
 * An error in an executed operation as a user sees it: HTTP 200 (GraphQL over HTTP: the status is the
 * transport's, the error is in `errors`), null data, the error code; and nothing internal or secret
 * anywhere in the body. Returns the first error for further checks.
 */
function expectApiError(result: GraphQLResult, code: string): { message: string; details: string } {
  const raw = JSON.stringify(result.body);
  expect(raw).not.toContain(API_KEY);
  expect(raw).not.toContain('stacktrace');
  expect(raw).not.toMatch(stackFrame);
  expect(result.body.errors?.[0]?.extensions?.code).toBe(code);
  expect(result.status).toBe(200);
  expect(result.body).toHaveProperty('data', null);
  const error = result.body.errors![0]!;
  const details = error.extensions?.details;
  return { message: error.message, details: typeof details === 'string' ? details : '' };
}

/** A validation_error from the executed operation whose message or details name every one of `mentions`. */
function expectValidationError(result: GraphQLResult, ...mentions: string[]): void {
  const { message, details } = expectApiError(result, 'validation_error');
  const text = `${message} ${details}`;
  for (const mention of mentions) expect(text).toContain(mention);
}

describe('generate mutation against OpenAI', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({
      // The failures below would open the endpoint's breaker (test/resilience covers that): these test their mapping.
      env: { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: fake.url, UPSTREAM_TIMEOUT_MS: '500', BREAKER_FAILURES: '1000' },
    });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  describe('a successful generation', () => {
    it('answers with the upstream text, the applied parameters, upstream token counts, catalog cost and full metadata', async () => {
      const prompt = 'Explain what a large language model gateway does';
      const result = await generate(gateway, { prompt, max_tokens: 50, temperature: 0.3, top_p: 0.9 });

      const body = expectSuccess(result);
      const reply = expectedReply(prompt, 50);
      expect(body.text).toBe(reply.text);
      expect(body.model_id).toBe('gpt-4o-mini');
      expect(body.prompt).toBe(prompt);
      expect(body.parameters).toEqual({ max_tokens: 50, temperature: 0.3, top_p: 0.9 });

      expect(body.metrics.input_tokens).toBe(reply.promptTokens);
      expect(body.metrics.output_tokens).toBe(reply.completionTokens);
      expect(body.metrics.total_tokens).toBe(reply.promptTokens + reply.completionTokens);
      expect(Number.isInteger(body.metrics.latency_ms)).toBe(true);
      expect(body.metrics.latency_ms).toBeGreaterThanOrEqual(0);

      const requestId = result.headers.get('x-request-id');
      expect(requestId).toBeTruthy();
      expect(body.metadata).toEqual({
        generation_id: expect.stringMatching(/^gen_[0-9a-z]{26}$/),
        finish_reason: 'stop',
        provider: 'openai',
        upstream_model: 'gpt-4o-mini',
        request_id: requestId,
        upstream_request_id: expect.stringMatching(/^req_\d+$/),
        token_source: 'upstream',
        cost_usd: { input: expect.any(Number), output: expect.any(Number), total: expect.any(Number) },
      });
      const inputCost = (reply.promptTokens * MINI_PRICE.input) / 1_000_000;
      const outputCost = (reply.completionTokens * MINI_PRICE.output) / 1_000_000;
      expect(body.metadata.cost_usd.input).toBeCloseTo(inputCost, 12);
      expect(body.metadata.cost_usd.output).toBeCloseTo(outputCost, 12);
      expect(body.metadata.cost_usd.total).toBeCloseTo(inputCost + outputCost, 12);
      expect(body.metadata.cost_usd.total).toBeGreaterThan(0);

      expect(body.timestamp).toMatch(isoTimestamp);
      expect(Number.isNaN(Date.parse(body.timestamp))).toBe(false);
    });

    it('applies the default parameters (max_tokens 100, temperature 0.7, top_p 1) when none are given', async () => {
      const prompt = 'one two three';
      const body = expectSuccess(await generate(gateway, { prompt }));

      expect(body.parameters).toEqual({ max_tokens: 100, temperature: 0.7, top_p: 1 });
      expect(body.text).toBe(expectedReply(prompt, 100).text);
      const [sent] = generationRequests(fake);
      expect(sent?.body).toMatchObject({ max_completion_tokens: 100, temperature: 0.7, top_p: 1 });
    });

    it('sends the prompt upstream as one user chat message with the requested temperature, top_p and max_completion_tokens', async () => {
      const prompt = 'What is the capital of France?';
      expectSuccess(await generate(gateway, { prompt, max_tokens: 42, temperature: 1.5, top_p: 0.25 }));

      const sent = generationRequests(fake);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.path).toBe('/v1/chat/completions');
      expect(sent[0]!.body).toMatchObject({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: prompt }],
        max_completion_tokens: 42,
        temperature: 1.5,
        top_p: 0.25,
      });
      expect(sent[0]!.body.messages).toHaveLength(1);
      expect(sent[0]!.body.max_tokens).toBeUndefined();
    });

    it('sends a completion model to /v1/completions with prompt and max_tokens', async () => {
      const prompt = 'Once upon a time there was';
      const body = expectSuccess(await generate(gateway, { prompt, model_id: 'gpt-3.5-turbo-instruct', max_tokens: 20 }));

      const reply = expectedReply(prompt, 20);
      expect(body.text).toBe(reply.text);
      expect(body.model_id).toBe('gpt-3.5-turbo-instruct');
      expect(body.metadata.upstream_model).toBe('gpt-3.5-turbo-instruct');
      expect(body.metrics.input_tokens).toBe(reply.promptTokens);
      expect(body.metrics.output_tokens).toBe(reply.completionTokens);

      const sent = generationRequests(fake);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.path).toBe('/v1/completions');
      expect(sent[0]!.body).toMatchObject({ model: 'gpt-3.5-turbo-instruct', prompt, max_tokens: 20, temperature: 0.7, top_p: 1 });
      expect(sent[0]!.body.messages).toBeUndefined();
      expect(sent[0]!.body.max_completion_tokens).toBeUndefined();
    });

    it('reports finish_reason length when the upstream stops at max_tokens', async () => {
      const prompt = 'a prompt with quite a few words in it';
      const body = expectSuccess(await generate(gateway, { prompt, max_tokens: 3 }));

      const reply = expectedReply(prompt, 3);
      expect(reply.finishReason).toBe('length');
      expect(body.text).toBe(reply.text);
      expect(body.metadata.finish_reason).toBe('length');
      expect(body.metrics.output_tokens).toBe(3);
    });

    it('counts tokens with the o200k tokenizer, chat framing included, when the upstream reports no usage', async () => {
      fake.defaultBehaviour = { kind: 'no-usage' };
      const prompt = 'Count my tokens, please: tokenization is fun!';
      const body = expectSuccess(await generate(gateway, { prompt }));

      const reply = expectedReply(prompt, 100);
      expect(body.text).toBe(reply.text);
      const inputTokens = countO200k(prompt) + CHAT_FRAMING_TOKENS;
      const outputTokens = countO200k(reply.text);
      expect(body.metadata.token_source).toBe('tokenizer');
      expect(body.metrics).toMatchObject({
        input_tokens: inputTokens,
        output_tokens: outputTokens,
        total_tokens: inputTokens + outputTokens,
      });
      const inputCost = (inputTokens * MINI_PRICE.input) / 1_000_000;
      const outputCost = (outputTokens * MINI_PRICE.output) / 1_000_000;
      expect(body.metadata.cost_usd.input).toBeCloseTo(inputCost, 12);
      expect(body.metadata.cost_usd.output).toBeCloseTo(outputCost, 12);
      expect(body.metadata.cost_usd.total).toBeCloseTo(inputCost + outputCost, 12);
    });

    it('echoes the caller x-request-id header and reports it as metadata.request_id', async () => {
      const result = await generate(gateway, {}, { 'x-request-id': 'test-req-1' });

      const body = expectSuccess(result);
      expect(result.headers.get('x-request-id')).toBe('test-req-1');
      expect(body.metadata.request_id).toBe('test-req-1');
    });
  });

  describe('parameter bounds', () => {
    it.each<[keyof Generated['parameters'], number]>([
      ['max_tokens', 1],
      ['max_tokens', 2048],
      ['temperature', 0],
      ['temperature', 2],
      ['top_p', 0],
      ['top_p', 1],
    ])('accepts %s %p, just inside its bound', async (field, value) => {
      const body = expectSuccess(await generate(gateway, { [field]: value }));
      expect(body.parameters[field]).toBe(value);
      expect(generationRequests(fake)).toHaveLength(1);
    });

    it.each<[keyof Generated['parameters'], number, string]>([
      ['max_tokens', 0, '1'],
      ['max_tokens', 2049, '2048'],
      ['temperature', -0.01, '0'],
      ['temperature', 2.01, '2'],
      ['top_p', -0.01, '0'],
      ['top_p', 1.01, '1'],
    ])('refuses %s %p with a validation_error naming the field and the bound %s', async (field, value, bound) => {
      const result = await generate(gateway, { [field]: value });
      expectValidationError(result, field, bound);
      expect(generationRequests(fake)).toHaveLength(0);
    });

    it('accepts a one-character prompt', async () => {
      const body = expectSuccess(await generate(gateway, { prompt: 'x' }));
      expect(body.prompt).toBe('x');
      expect(body.text).toBe(expectedReply('x', 100).text);
    });

    it('accepts a prompt of exactly 10000 characters', async () => {
      const prompt = 'abcd '.repeat(2000);
      expect(prompt).toHaveLength(10_000);
      const body = expectSuccess(await generate(gateway, { prompt }));
      expect(body.prompt).toBe(prompt);
      expect(generationRequests(fake)[0]?.body.messages[0].content).toBe(prompt);
    });

    it('refuses an empty prompt with a validation_error naming prompt and the minimum length', async () => {
      const result = await generate(gateway, { prompt: '' });
      expectValidationError(result, 'prompt', '1');
      expect(generationRequests(fake)).toHaveLength(0);
    });

    it('refuses a prompt of 10001 characters with a validation_error naming prompt and the maximum length', async () => {
      const prompt = `${'abcd '.repeat(2000)}z`;
      expect(prompt).toHaveLength(10_001);
      const result = await generate(gateway, { prompt });
      expectValidationError(result, 'prompt', '10000');
      expect(generationRequests(fake)).toHaveLength(0);
    });

    it('refuses a non-integer max_tokens with HTTP 400 validation_error before executing anything', async () => {
      const result = await generate(gateway, { max_tokens: 3.5 });
      expect(result.status).toBe(400);
      expect(result.body).not.toHaveProperty('data');
      expect(result.body.errors?.[0]?.extensions?.code).toBe('validation_error');
      expect(result.body.errors?.[0]?.message).toContain('max_tokens');
      expect(generationRequests(fake)).toHaveLength(0);
    });
  });

  describe('model errors', () => {
    it('returns model_not_found for an unknown model', async () => {
      const result = await generate(gateway, { model_id: 'no-such-model' });
      const { message } = expectApiError(result, 'model_not_found');
      expect(message).toContain('no-such-model');
      expect(generationRequests(fake)).toHaveLength(0);
    });
  });

  describe('provider errors', () => {
    it('returns upstream_error when the upstream answers HTTP 500', async () => {
      fake.queueBehaviours({ kind: 'status', status: 500 });
      const result = await generate(gateway, {});
      const { details } = expectApiError(result, 'upstream_error');
      expect(details).toContain('500');
    });

    it('returns upstream_timeout naming the deadline when the upstream does not answer in time', async () => {
      fake.queueBehaviours({ kind: 'timeout' });
      const startedAt = Date.now();
      const result = await generate(gateway, {});
      const { details } = expectApiError(result, 'upstream_timeout');
      expect(details).toMatch(/500\s*ms|time(d)?\s*out/i);
      expect(details).toContain('500');
      // The gateway gave up on its own deadline, not on some much later one.
      expect(Date.now() - startedAt).toBeLessThan(5000);
    });

    it('returns upstream_error when the upstream sends malformed JSON', async () => {
      fake.queueBehaviours({ kind: 'malformed' });
      const result = await generate(gateway, {});
      expectApiError(result, 'upstream_error');
    });

    it("returns upstream_error when the upstream rejects the gateway's credentials with 401", async () => {
      fake.queueBehaviours({ kind: 'status', status: 401 });
      const result = await generate(gateway, {});
      const { message } = expectApiError(result, 'upstream_error');
      expect(message).toContain('gpt-4o-mini');
    });

    it('returns upstream_rate_limited when the upstream rate-limits with 429', async () => {
      fake.queueBehaviours({ kind: 'status', status: 429 });
      const result = await generate(gateway, {});
      const { details } = expectApiError(result, 'upstream_rate_limited');
      expect(details).toContain('429');
    });

    it('recovers for the next request after an upstream failure', async () => {
      fake.queueBehaviours({ kind: 'status', status: 500 });
      expectApiError(await generate(gateway, {}), 'upstream_error');
      const body = expectSuccess(await generate(gateway, { prompt: 'fine again' }));
      expect(body.text).toBe(expectedReply('fine again', 100).text);
    });
  });
});

describe('generate mutation with a small-context endpoint model', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: ['tiny-model'] });
    gateway = await startGateway({
      env: { UPSTREAM_TIMEOUT_MS: '500' },
      catalog: {
        endpoints: [{ name: 'tiny', base_url: fake.url }],
        models: [{ id: 'tiny-model', provider: 'tiny', context_length: 50 }],
      },
    });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('generates when max_tokens fits in the context left after the prompt', async () => {
    const body = expectSuccess(await generate(gateway, { model_id: 'tiny-model', prompt: 'hello', max_tokens: 10 }));
    expect(body.text).toBe(expectedReply('hello', 10).text);
    expect(body.metadata.provider).toBe('tiny');
  });

  it('refuses max_tokens that would overflow the model context with a validation_error naming max_tokens and the context', async () => {
    const result = await generate(gateway, { model_id: 'tiny-model', prompt: 'hello', max_tokens: 100 });
    const { details } = expectApiError(result, 'validation_error');
    expect(details).toContain('max_tokens');
    expect(details).toMatch(/context/);
    expect(details).toContain('50');
    expect(generationRequests(fake)).toHaveLength(0);
  });
});

describe('generate mutation without an OpenAI key', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({ env: { OPENAI_BASE_URL: fake.url, UPSTREAM_TIMEOUT_MS: '500' } });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('returns model_unavailable naming OPENAI_API_KEY for an OpenAI model', async () => {
    const result = await generate(gateway, { model_id: 'gpt-4o-mini' });
    const { message, details } = expectApiError(result, 'model_unavailable');
    expect(message).toContain('gpt-4o-mini');
    expect(details).toContain('OPENAI_API_KEY');
    expect(generationRequests(fake)).toHaveLength(0);
  });
});
