import type { GenerationRecord } from '../../src/pipeline/generation-record';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type RunningGateway } from '../support/start-gateway';

/*
 * The generation pipeline as a user meets it: through the real gateway over HTTP, against a fake
 * OpenAI-compatible upstream that counts what reaches it.
 */

const generateMutation = `mutation ($prompt: String!, $model_id: String!, $max_tokens: Int) {
  generate(prompt: $prompt, model_id: $model_id, max_tokens: $max_tokens) { text metrics { input_tokens output_tokens } }
}`;
const batchMutation = `mutation ($prompts: [String!]!, $model_id: String!) {
  generate_batch(prompts: $prompts, model_id: $model_id) { results { index text success error } }
}`;

/** A catalog with one completion-API model and one chat model on a vLLM-like endpoint. */
const catalogFor = (fake: FakeUpstream) => ({
  endpoints: [{ name: 'vllm', base_url: fake.url }],
  models: [
    {
      id: 'tiny-completion',
      provider: 'vllm',
      api: 'completion',
      context_length: 4096,
      pricing: { input_per_million: 1, output_per_million: 2 },
    },
    { id: 'tiny-chat', provider: 'vllm', api: 'chat', context_length: 4096 },
  ],
});

const generationCalls = (fake: FakeUpstream) =>
  fake.requests.filter((request) => request.method === 'POST' && request.path !== '/v1/models');

function recordsOf(gateway: RunningGateway): { records: GenerationRecord[]; stop: () => void } {
  const records: GenerationRecord[] = [];
  const stop = gateway.app.pipeline.recorder.subscribe((record) => records.push(record));
  return { records, stop };
}

const errorCodeOf = (body: { errors?: Array<{ extensions?: Record<string, unknown> }> }): unknown => body.errors?.[0]?.extensions?.code;

describe('the generation pipeline', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: ['tiny-completion', 'tiny-chat'] });
    gateway = await startGateway({ catalog: catalogFor(fake), env: { UPSTREAM_MAX_RETRIES: '2' } });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('sends all prompts of a completion-model batch upstream in one call, and gives each prompt its own answer', async () => {
    const prompts = ['first prompt', 'the second one', 'three', 'four words here now', 'five'];
    const result = await gateway.graphql(batchMutation, { prompts, model_id: 'tiny-completion' });

    expect(result.body.errors).toBeUndefined();
    const calls = generationCalls(fake);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.path).toBe('/v1/completions');
    expect(calls[0]!.body.prompt).toEqual(prompts);
    const results = result.body.data.generate_batch.results;
    expect(results.map((item: { text: string }) => item.text)).toEqual(prompts.map((prompt) => expectedReply(prompt, 100).text));
  });

  it('sends chat-model batch prompts one call each, since the chat API takes one conversation', async () => {
    const result = await gateway.graphql(batchMutation, { prompts: ['a', 'b', 'c'], model_id: 'tiny-chat' });

    expect(result.body.errors).toBeUndefined();
    expect(generationCalls(fake).map((call) => call.path)).toEqual(Array(3).fill('/v1/chat/completions'));
  });

  it('records exactly one generation per prompt, failed ones included, with the caller and the figures the answer showed', async () => {
    const { records, stop } = recordsOf(gateway);
    try {
      const single = await gateway.graphql(generateMutation, { prompt: 'hello there', model_id: 'tiny-chat' });
      fake.failPromptsContaining = 'broken';
      await gateway.graphql(batchMutation, { prompts: ['fine', 'broken', 'also fine'], model_id: 'tiny-chat' });

      expect(records).toHaveLength(4);
      const [first, ...batch] = records;
      expect(first).toMatchObject({
        source: 'generate',
        status: 'succeeded',
        error: null,
        modelId: 'tiny-chat',
        provider: 'vllm',
        inputTokens: single.body.data.generate.metrics.input_tokens,
        outputTokens: single.body.data.generate.metrics.output_tokens,
        attempts: 1,
      });
      expect(first!.caller.role).toBe('admin');
      expect(batch.map((record) => [record.source, record.status, record.error])).toEqual(
        expect.arrayContaining([
          ['batch', 'succeeded', null],
          ['batch', 'succeeded', null],
          ['batch', 'failed', 'upstream_error'],
        ]),
      );
    } finally {
      stop();
    }
  });

  it('records nothing for a request refused before any upstream call', async () => {
    const { records, stop } = recordsOf(gateway);
    try {
      const invalid = await gateway.graphql(generateMutation, { prompt: 'hi', model_id: 'tiny-chat', max_tokens: 0 });
      const unknown = await gateway.graphql(generateMutation, { prompt: 'hi', model_id: 'no-such-model' });

      expect(errorCodeOf(invalid.body)).toBe('validation_error');
      expect(errorCodeOf(unknown.body)).toBe('model_not_found');
      expect(records).toEqual([]);
      expect(generationCalls(fake)).toEqual([]);
    } finally {
      stop();
    }
  });

  it('retries a retryable upstream failure in the pipeline alone: UPSTREAM_MAX_RETRIES=2 means at most 3 upstream calls', async () => {
    const { records, stop } = recordsOf(gateway);
    try {
      fake.queueBehaviours({ kind: 'status', status: 500 }, { kind: 'status', status: 503 });
      const recovered = await gateway.graphql(generateMutation, { prompt: 'try again', model_id: 'tiny-chat' });
      expect(recovered.body.errors).toBeUndefined();
      expect(recovered.body.data.generate.text).toBe(expectedReply('try again', 100).text);
      expect(generationCalls(fake)).toHaveLength(3);

      fake.reset();
      fake.defaultBehaviour = { kind: 'status', status: 500 };
      const failed = await gateway.graphql(generateMutation, { prompt: 'never works', model_id: 'tiny-chat' });
      expect(errorCodeOf(failed.body)).toBe('upstream_error');
      expect(generationCalls(fake)).toHaveLength(3);

      expect(records.map((record) => [record.status, record.attempts])).toEqual([
        ['succeeded', 3],
        ['failed', 3],
      ]);
    } finally {
      stop();
    }
  });

  it("never retries a request the upstream rejected as invalid, and answers validation_error with the upstream's reason", async () => {
    fake.defaultBehaviour = { kind: 'status', status: 400 };
    const result = await gateway.graphql(generateMutation, { prompt: 'bad request', model_id: 'tiny-chat' });

    expect(errorCodeOf(result.body)).toBe('validation_error');
    expect(result.body.errors?.[0]?.extensions?.details).toBe('Fake upstream error (status 400)');
    expect(generationCalls(fake)).toHaveLength(1);
  });

  it('keeps no timer or signal alive for a finished generation', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    await gateway.graphql(generateMutation, { prompt: 'warm up', model_id: 'tiny-chat' });
    const before = timers();
    for (let round = 0; round < 100; round += 1) {
      await gateway.graphql(generateMutation, { prompt: `request ${round}`, model_id: 'tiny-chat' });
    }
    // The default deadline is 60 s: a timer left behind per request would show as ~100 here.
    expect(timers() - before).toBeLessThan(10);
  });
});

describe('the provider queue', () => {
  let fake: FakeUpstream;

  beforeEach(async () => {
    fake = await startFakeUpstream({ models: ['tiny-completion', 'tiny-chat'] });
  });
  afterEach(() => fake.close());

  async function gatewayWith(env: Record<string, string>): Promise<RunningGateway> {
    return startGateway({ catalog: catalogFor(fake), env: { PROVIDER_CONCURRENCY: '1', ...env } });
  }

  it('counts the time a request waits for a connection slot in its deadline', async () => {
    const gateway = await gatewayWith({ UPSTREAM_TIMEOUT_MS: '700' });
    try {
      fake.latencyMs = 450;
      // The second waits ~450 ms for the slot, then would need 450 ms more: past its 700 ms deadline.
      const [first, second] = await Promise.all([
        gateway.graphql(generateMutation, { prompt: 'first', model_id: 'tiny-chat' }),
        gateway.graphql(generateMutation, { prompt: 'second', model_id: 'tiny-chat' }),
      ]);
      expect(first.body.errors).toBeUndefined();
      // It got its slot in time but the upstream took longer than what was left: a timeout, not a full queue.
      expect(errorCodeOf(second.body)).toBe('upstream_timeout');
      expect(second.body.errors?.[0]?.extensions?.details).toBe('no answer within 700 ms');
    } finally {
      await gateway.close();
    }
  });

  it('refuses at once with model_unavailable when the queue is full', async () => {
    const gateway = await gatewayWith({ PROVIDER_QUEUE_LIMIT: '1' });
    try {
      fake.latencyMs = 300;
      const startedAt = performance.now();
      const answers = await Promise.all(
        ['one', 'two', 'three'].map((prompt) =>
          gateway
            .graphql(generateMutation, { prompt, model_id: 'tiny-chat' })
            .then((answer) => ({ answer, at: performance.now() - startedAt })),
        ),
      );
      const refused = answers.filter(({ answer }) => answer.body.errors !== undefined);
      expect(refused).toHaveLength(1);
      expect(errorCodeOf(refused[0]!.answer.body)).toBe('model_unavailable');
      expect(String(refused[0]!.answer.body.errors?.[0]?.extensions?.details)).toContain('saturated');
      // Refused without waiting for the one in flight.
      expect(refused[0]!.at).toBeLessThan(300);
      expect(generationCalls(fake)).toHaveLength(2);
    } finally {
      await gateway.close();
    }
  });

  it('drops a queued request whose client went away: it never reaches the upstream and is recorded as cancelled', async () => {
    const gateway = await gatewayWith({});
    const { records, stop } = recordsOf(gateway);
    try {
      fake.latencyMs = 400;
      const first = gateway.graphql(generateMutation, { prompt: 'first', model_id: 'tiny-chat' });
      const leaving = new AbortController();
      const abandoned = fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: generateMutation, variables: { prompt: 'abandoned', model_id: 'tiny-chat' } }),
        signal: leaving.signal,
      }).catch((error: unknown) => error);
      setTimeout(() => leaving.abort(), 100);
      expect((await first).body.errors).toBeUndefined();
      await abandoned;
      // The abandoned request had its turn once the first finished; give it a moment to (not) go upstream.
      await new Promise((resolve) => setTimeout(resolve, 200));

      expect(generationCalls(fake).map((call) => call.body.messages[0].content)).toEqual(['first']);
      expect(records.map((record) => record.status).sort()).toEqual(['cancelled', 'succeeded']);
    } finally {
      stop();
      await gateway.close();
    }
  });
});
