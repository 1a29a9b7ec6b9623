import type { LanguageModelProvider } from '../../src/providers/provider';
import { GenerateBatchDocument, type GenerateBatchMutation, type GenerateBatchMutationVariables } from '../generated/graphql';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type GraphQLResult, type RunningGateway } from '../support/start-gateway';

const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

// gpt-4o-mini in catalog/default-models.json: USD per million tokens.
const MINI_PRICE = { input: 0.15, output: 0.6 };

type BatchVariables = Partial<GenerateBatchMutationVariables> & Pick<GenerateBatchMutationVariables, 'prompts'>;
type BatchItemMetadata = NonNullable<GenerateBatchMutation['generate_batch']['results'][number]['metadata']>;

function runBatch(gateway: RunningGateway, variables: BatchVariables): Promise<GraphQLResult<GenerateBatchMutation>> {
  return gateway.execute(GenerateBatchDocument, { model_id: 'gpt-4o-mini', ...variables });
}

const chatRequests = (fake: FakeUpstream) => fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions');

function openaiProvider(gateway: RunningGateway): LanguageModelProvider {
  const provider = gateway.app.registry.providers.find((p) => p.name === 'openai');
  if (!provider) throw new Error('the gateway has no openai provider');
  return provider;
}

const promptsOf = (count: number): string[] => Array.from({ length: count }, (_, i) => `prompt number ${i + 1}`);

/** A validation_error from the executed operation: HTTP 200 with the error in `errors` (GraphQL over HTTP). */
function expectValidationError(result: GraphQLResult, ...mentions: string[]): void {
  expect(result.status).toBe(200);
  expect(result.body).toHaveProperty('data', null);
  const error = result.body.errors?.[0];
  expect(error?.extensions?.code).toBe('validation_error');
  const text = `${error?.message ?? ''} ${String(error?.extensions?.details ?? '')}`;
  for (const mention of mentions) expect(text).toContain(mention);
}

describe('generate_batch mutation', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({ env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url } });
  });
  beforeEach(() => fake.reset());
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('answers every prompt in order with its own text, token counts and cost, and sums them in the metrics', async () => {
    const prompts = ['What is AI?', 'Explain machine learning in simple words', 'Hello'];
    const result = await runBatch(gateway, { prompts, max_tokens: 50, temperature: 0.3, top_p: 0.9 });

    expect(result.status).toBe(200);
    expect(result.body.errors).toBeUndefined();
    const batch = result.body.data!.generate_batch;
    expect(batch.model_id).toBe('gpt-4o-mini');
    expect(batch.parameters).toEqual({ max_tokens: 50, temperature: 0.3, top_p: 0.9 });
    expect(batch.timestamp).toMatch(isoTimestamp);

    const requestId = result.headers.get('x-request-id');
    expect(batch.results).toHaveLength(prompts.length);
    prompts.forEach((prompt, index) => {
      const reply = expectedReply(prompt, 50);
      const item = batch.results[index]!;
      expect(item).toEqual({
        index,
        prompt,
        text: reply.text,
        success: true,
        error: null,
        metadata: {
          generation_id: expect.stringMatching(/^gen_[0-9a-z]{26}$/),
          finish_reason: reply.finishReason,
          provider: 'openai',
          upstream_model: 'gpt-4o-mini',
          request_id: requestId,
          upstream_request_id: expect.stringMatching(/^req_\d+$/),
          token_source: 'upstream',
          latency_ms: expect.any(Number),
          input_tokens: reply.promptTokens,
          output_tokens: reply.completionTokens,
          total_tokens: reply.promptTokens + reply.completionTokens,
          cost_usd: { input: expect.any(Number), output: expect.any(Number), total: expect.any(Number) },
        },
      });
      expect(item.metadata.latency_ms).toBeGreaterThanOrEqual(0);
      expect(item.metadata.cost_usd!.input).toBeCloseTo((reply.promptTokens * MINI_PRICE.input) / 1e6, 12);
      expect(item.metadata.cost_usd!.output).toBeCloseTo((reply.completionTokens * MINI_PRICE.output) / 1e6, 12);
      expect(item.metadata.cost_usd!.total).toBeCloseTo(item.metadata.cost_usd!.input + item.metadata.cost_usd!.output, 12);
    });

    const items = batch.results.map((r) => r.metadata);
    const sum = (pick: (m: BatchItemMetadata) => number): number => items.reduce((total, m) => total + pick(m), 0);
    const metrics = batch.metrics;
    expect(metrics.successful_generations).toBe(3);
    expect(metrics.failed_generations).toBe(0);
    expect(metrics.input_tokens).toBe(sum((m) => m.input_tokens!));
    expect(metrics.output_tokens).toBe(sum((m) => m.output_tokens!));
    expect(metrics.total_tokens).toBe(metrics.input_tokens + metrics.output_tokens);
    expect(metrics.average_latency_ms).toBe(Math.round(sum((m) => m.latency_ms!) / items.length));
    expect(metrics.total_latency_ms).toBeGreaterThanOrEqual(0);
    expect(metrics.cost_usd.input).toBeCloseTo(
      sum((m) => m.cost_usd!.input),
      12,
    );
    expect(metrics.cost_usd.output).toBeCloseTo(
      sum((m) => m.cost_usd!.output),
      12,
    );
    expect(metrics.cost_usd.total).toBeCloseTo(metrics.cost_usd.input + metrics.cost_usd.output, 12);
    expect(metrics.cost_usd.total).toBeGreaterThan(0);

    // Each prompt went upstream as its own chat request with the requested parameters.
    const sent = chatRequests(fake);
    expect(sent.map((r) => r.body.messages[0].content).sort()).toEqual([...prompts].sort());
    for (const request of sent) {
      expect(request.body).toMatchObject({ model: 'gpt-4o-mini', max_completion_tokens: 50, temperature: 0.3, top_p: 0.9 });
    }
  });

  it('applies the default parameters when none are given', async () => {
    const result = await runBatch(gateway, { prompts: ['one two three'] });
    expect(result.status).toBe(200);
    expect(result.body.data!.generate_batch.parameters).toEqual({ max_tokens: 100, temperature: 0.7, top_p: 1 });
    expect(result.body.data!.generate_batch.results[0]!.text).toBe(expectedReply('one two three', 100).text);
  });

  it('fails only the prompt the upstream rejects, keeps the others, and still answers HTTP 200', async () => {
    fake.failPromptsContaining = 'FAIL';
    const prompts = ['first fine prompt', 'this one should FAIL', 'third fine prompt'];
    const result = await runBatch(gateway, { prompts });

    expect(result.status).toBe(200);
    expect(result.body.errors).toBeUndefined();
    const batch = result.body.data!.generate_batch;
    const [first, failed, third] = batch.results;
    expect(first).toMatchObject({ index: 0, prompt: prompts[0], text: expectedReply(prompts[0]!, 100).text, success: true, error: null });
    expect(third).toMatchObject({ index: 2, prompt: prompts[2], text: expectedReply(prompts[2]!, 100).text, success: true, error: null });
    expect(failed).toMatchObject({ index: 1, prompt: prompts[1], text: null, success: false, error: expect.any(String) });
    // A failed prompt is still a generation in the ledger: its metadata holds only its id.
    expect(failed!.metadata).toEqual(
      expect.objectContaining({ generation_id: expect.stringMatching(/^gen_/), provider: null, cost_usd: null, input_tokens: null }),
    );
    expect(failed!.error!.trim().length).toBeGreaterThan(0);
    expect(failed!.error).not.toContain('sk-test');

    expect(batch.metrics.successful_generations).toBe(2);
    expect(batch.metrics.failed_generations).toBe(1);
    // Aggregates count only the successful prompts.
    expect(batch.metrics.input_tokens).toBe(first!.metadata.input_tokens! + third!.metadata.input_tokens!);
    expect(batch.metrics.output_tokens).toBe(first!.metadata.output_tokens! + third!.metadata.output_tokens!);
  });

  it('sends all prompts of a batch to the provider in one generateBatch call, never prompt by prompt', async () => {
    const provider = openaiProvider(gateway);
    const batchSpy = jest.spyOn(provider, 'generateBatch');
    const generateSpy = jest.spyOn(provider, 'generate');
    const prompts = promptsOf(5);

    const result = await runBatch(gateway, { prompts });

    expect(result.status).toBe(200);
    expect(result.body.data!.generate_batch.metrics.successful_generations).toBe(5);
    expect(batchSpy).toHaveBeenCalledTimes(1);
    const requests = batchSpy.mock.calls[0]![0];
    expect(requests).toHaveLength(5);
    expect(requests.map((r) => r.prompt)).toEqual(prompts);
    expect(requests.every((r) => r.model.id === 'gpt-4o-mini')).toBe(true);
    expect(generateSpy).not.toHaveBeenCalled();
    // The spy wrapped the real method: the prompts really went upstream.
    expect(chatRequests(fake)).toHaveLength(5);
  });

  it('runs the prompts of a batch concurrently', async () => {
    fake.latencyMs = 200;
    const result = await runBatch(gateway, { prompts: promptsOf(4) });

    expect(result.status).toBe(200);
    expect(result.body.data!.generate_batch.metrics.successful_generations).toBe(4);
    expect(fake.maxInFlight).toBe(4);
    expect(result.body.data!.generate_batch.metrics.total_latency_ms).toBeGreaterThanOrEqual(200);
    for (const item of result.body.data!.generate_batch.results) expect(item.metadata.latency_ms).toBeGreaterThanOrEqual(150);
  });

  it('generates the same prompt twice when a batch holds it twice', async () => {
    const prompts = ['repeat me please', 'repeat me please'];
    const result = await runBatch(gateway, { prompts });

    expect(result.status).toBe(200);
    const batch = result.body.data!.generate_batch;
    expect(batch.metrics.successful_generations).toBe(2);
    expect(batch.results.map((r) => r.text)).toEqual([expectedReply(prompts[0]!, 100).text, expectedReply(prompts[1]!, 100).text]);
    expect(chatRequests(fake)).toHaveLength(2);
    expect(batch.results[0]!.metadata!.upstream_request_id).not.toBe(batch.results[1]!.metadata!.upstream_request_id);
  });

  it('accepts a batch of exactly one prompt and of exactly ten', async () => {
    const one = await runBatch(gateway, { prompts: promptsOf(1) });
    expect(one.status).toBe(200);
    expect(one.body.data!.generate_batch.results).toHaveLength(1);
    expect(one.body.data!.generate_batch.metrics.successful_generations).toBe(1);

    const ten = await runBatch(gateway, { prompts: promptsOf(10) });
    expect(ten.status).toBe(200);
    expect(ten.body.data!.generate_batch.results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ten.body.data!.generate_batch.metrics.successful_generations).toBe(10);
  });

  it('refuses an empty list of prompts with a validation error naming prompts and the bound', async () => {
    const result = await runBatch(gateway, { prompts: [] });
    expectValidationError(result, 'prompts', '1', '10');
    expect(chatRequests(fake)).toHaveLength(0);
  });

  it('refuses eleven prompts with a validation error naming prompts and the bound', async () => {
    const result = await runBatch(gateway, { prompts: promptsOf(11) });
    expectValidationError(result, 'prompts', '10');
    expect(chatRequests(fake)).toHaveLength(0);
  });

  it('refuses a batch holding an empty prompt, naming the item', async () => {
    const result = await runBatch(gateway, { prompts: ['a fine prompt', ''] });
    expectValidationError(result, 'prompts[1]');
    expect(chatRequests(fake)).toHaveLength(0);
  });

  it('refuses max_tokens above 2048', async () => {
    const result = await runBatch(gateway, { prompts: ['hello'], max_tokens: 2049 });
    expectValidationError(result, 'max_tokens', '2048');
    expect(chatRequests(fake)).toHaveLength(0);
  });

  it('fails the whole call with model_not_found for an unknown model', async () => {
    const result = await runBatch(gateway, { prompts: ['hello', 'world'], model_id: 'no-such-model' });
    expect(result.status).toBe(200);
    expect(result.body.data).toBeNull();
    expect(result.body.errors?.[0]?.extensions?.code).toBe('model_not_found');
    expect(result.body.errors?.[0]?.message).toContain('no-such-model');
    expect(chatRequests(fake)).toHaveLength(0);
  });
});

describe('generate_batch with PROVIDER_CONCURRENCY=2', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({
      env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, PROVIDER_CONCURRENCY: '2' },
    });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('keeps at most two prompts in flight upstream and still answers all four', async () => {
    fake.latencyMs = 200;
    const prompts = promptsOf(4);
    const result = await runBatch(gateway, { prompts });

    expect(result.status).toBe(200);
    const batch = result.body.data!.generate_batch;
    expect(fake.maxInFlight).toBe(2);
    expect(batch.metrics.successful_generations).toBe(4);
    expect(batch.metrics.failed_generations).toBe(0);
    expect(batch.results.map((r) => r.text)).toEqual(prompts.map((p) => expectedReply(p, 100).text));
    // Two waves of 200 ms each.
    expect(batch.metrics.total_latency_ms).toBeGreaterThanOrEqual(400);
  });
});
