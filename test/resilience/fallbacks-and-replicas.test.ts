/**
 * Issue 16's routing as a client meets it, through the real gateway against fake OpenAI-compatible
 * upstreams that count what reaches them: a failing model falls back to its fallbacks, replicas of one
 * model share the load by least requests in flight, retries honour an upstream's Retry-After up to a
 * cap, a failing endpoint's circuit breaker opens and a probe closes it again, a full bulkhead queue
 * refuses at once, and a stream falls back before its first byte but is never retried after it.
 */
import { performance } from 'node:perf_hooks';
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { generationCalls, type LedgerGeneration } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { dataOf, joinedDeltas, openStream, type ReceivedEvent } from '../streaming/sse-client';

const PRICE = { input_per_million: 1, output_per_million: 2 };
/** The gateway's default max_tokens: the fake echoes at most this many words. */
const DEFAULT_MAX_TOKENS = 100;

const GENERATE = `mutation ($prompt: String!, $model_id: String!, $max_tokens: Int) {
  generate(prompt: $prompt, model_id: $model_id, max_tokens: $max_tokens) {
    text model_id
    metadata { generation_id provider upstream_model attempts { model_id provider error latency_ms } }
  }
}`;

interface Attempt {
  model_id: string;
  provider: string;
  error: string | null;
  latency_ms: number | null;
}

const errorOf = (body: { errors?: Array<{ extensions?: Record<string, unknown> }> }) => body.errors?.[0]?.extensions;

/** An attempt as the answer lists it: a failed one with its code, the served one with null. */
const attempt = (modelId: string, provider: string, error: string | null): Attempt => ({
  model_id: modelId,
  provider,
  error,
  latency_ms: expect.any(Number) as unknown as number,
});

async function ledgerRow(gateway: RunningGateway, generationId: string): Promise<LedgerGeneration> {
  const response = await rest(gateway, 'GET', `/generations/${generationId}`);
  expectToMatchContract(response, '/generations/{generation_id}', 'get');
  expect(response.status).toBe(200);
  return response.body as LedgerGeneration;
}

async function generateRest(gateway: RunningGateway, body: Record<string, unknown>): Promise<RestResponse> {
  const response = await rest(gateway, 'POST', '/generate', body);
  expectToMatchContract(response, '/generate', 'post');
  return response;
}

async function providerOf(gateway: RunningGateway, name: string): Promise<{ status: string; provider: any; providers: any[] }> {
  const response = await rest(gateway, 'GET', '/status');
  expectToMatchContract(response, '/status', 'get');
  const providers = response.body.providers as any[];
  return { status: response.body.status, provider: providers.find((provider) => provider.name === name), providers };
}

describe('fallbacks: a model whose endpoint fails is served by its fallback on another endpoint', () => {
  let primary: FakeUpstream;
  let secondary: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    primary = await startFakeUpstream({ models: ['main-upstream'] });
    secondary = await startFakeUpstream({ models: ['backup-upstream'] });
    gateway = await startGateway({
      catalog: {
        endpoints: [
          { name: 'primary', base_url: primary.url },
          { name: 'secondary', base_url: secondary.url },
        ],
        models: [
          { id: 'main-model', provider: 'primary', upstream_model: 'main-upstream', fallbacks: ['backup-model'], pricing: PRICE },
          { id: 'backup-model', provider: 'secondary', upstream_model: 'backup-upstream', pricing: PRICE },
        ],
      },
      // Two retries per endpoint (with a tiny backoff), and a breaker that never opens here.
      env: { UPSTREAM_MAX_RETRIES: '2', UPSTREAM_RETRY_BASE_MS: '1', BREAKER_FAILURES: '1000' },
    });
  });
  beforeEach(() => {
    primary.reset();
    secondary.reset();
  });
  afterAll(async () => {
    await gateway.close();
    await primary.close();
    await secondary.close();
  });

  const primaryFailures = [1, 2, 3].map(() => attempt('main-model', 'primary', 'upstream_error'));

  it('over GraphQL: answers from the fallback, and says which endpoint served and every attempt it took', async () => {
    primary.defaultBehaviour = { kind: 'status', status: 500 };
    const prompt = 'primary is down today';

    const result = await gateway.graphql(GENERATE, { prompt, model_id: 'main-model' });

    expect(result.body.errors).toBeUndefined();
    const answer = result.body.data.generate;
    expect(answer.text).toBe(expectedReply(prompt, DEFAULT_MAX_TOKENS).text);
    expect(answer.model_id).toBe('main-model');
    expect(answer.metadata).toMatchObject({ provider: 'secondary', upstream_model: 'backup-upstream' });
    // UPSTREAM_MAX_RETRIES=2: three calls to the primary, then the fallback.
    expect(answer.metadata.attempts).toEqual([...primaryFailures, attempt('backup-model', 'secondary', null)]);
    for (const { latency_ms } of answer.metadata.attempts as Attempt[]) expect(latency_ms).toBeGreaterThanOrEqual(0);
    expect(generationCalls(primary)).toHaveLength(3);
    expect(generationCalls(secondary).map((call) => call.body.model)).toEqual(['backup-upstream']);

    const row = await ledgerRow(gateway, answer.metadata.generation_id);
    expect(row).toMatchObject({ status: 'succeeded', error: null, provider: 'secondary', model_id: 'main-model' });
    expect(row.attempts).toEqual(answer.metadata.attempts);
  });

  it('over REST POST /api/v1/generate: the same answer, within the contract, and the ledger row names the served endpoint', async () => {
    primary.defaultBehaviour = { kind: 'status', status: 503 };
    const prompt = 'rest caller meets a failing primary';

    const response = await generateRest(gateway, { prompt, model_id: 'main-model' });

    expect(response.status).toBe(200);
    expect(response.body.text).toBe(expectedReply(prompt, DEFAULT_MAX_TOKENS).text);
    expect(response.body.metadata).toMatchObject({ provider: 'secondary', upstream_model: 'backup-upstream' });
    expect(response.body.metadata.attempts).toEqual([...primaryFailures, attempt('backup-model', 'secondary', null)]);

    const row = await ledgerRow(gateway, response.body.metadata.generation_id);
    expect(row).toMatchObject({ status: 'succeeded', provider: 'secondary', text: response.body.text });
  });

  it('lists a single attempt when the primary answers', async () => {
    const response = await generateRest(gateway, { prompt: 'all is well', model_id: 'main-model' });

    expect(response.status).toBe(200);
    expect(response.body.metadata).toMatchObject({ provider: 'primary', upstream_model: 'main-upstream' });
    expect(response.body.metadata.attempts).toEqual([attempt('main-model', 'primary', null)]);
    expect(generationCalls(secondary)).toHaveLength(0);
  });

  it('answers 502 upstream_error, never a 500, when the fallback fails too', async () => {
    primary.defaultBehaviour = { kind: 'status', status: 500 };
    secondary.defaultBehaviour = { kind: 'status', status: 502 };

    const response = await generateRest(gateway, { prompt: 'everything is down', model_id: 'main-model' });

    expect(response.status).toBe(502);
    expect(response.body.error).toBe('upstream_error');
    expect(generationCalls(primary)).toHaveLength(3);
    expect(generationCalls(secondary)).toHaveLength(3);
  });

  it.each([400, 413, 422])(
    'never retries an upstream %i nor sends it to the fallback: 400 validation_error with the upstream’s reason',
    async (status) => {
      const reason = `This model's maximum context length is 8 tokens (fake ${status})`;
      primary.queueBehaviours({
        kind: 'status',
        status,
        body: { error: { message: reason, type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } },
      });

      const response = await generateRest(gateway, { prompt: 'too long for the upstream', model_id: 'main-model' });
      const graphql = await (async () => {
        primary.queueBehaviours({
          kind: 'status',
          status,
          body: { error: { message: reason, type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } },
        });
        return gateway.graphql(GENERATE, { prompt: 'too long again', model_id: 'main-model' });
      })();

      expect(response.status).toBe(400);
      expect(response.body.error).toBe('validation_error');
      expect(response.body.details).toContain(reason);
      expect(errorOf(graphql.body)).toMatchObject({ code: 'validation_error', details: expect.stringContaining(reason) });
      expect(generationCalls(primary)).toHaveLength(2);
      expect(generationCalls(secondary)).toHaveLength(0);
    },
  );
});

/** Resolves once `response` settles or `held()` holds (checked every 10 ms), or 'neither' after 3 s. */
async function answeredOrHeld(response: Promise<unknown>, held: () => boolean): Promise<'answered' | 'held' | 'neither'> {
  let answered = false;
  void response.then(() => {
    answered = true;
  });
  const giveUpAt = performance.now() + 3000;
  for (;;) {
    if (answered) return 'answered';
    if (held()) return 'held';
    if (performance.now() > giveUpAt) return 'neither';
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('replicas: a model with several endpoints spreads its requests over them', () => {
  let replicaA: FakeUpstream;
  let replicaB: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    replicaA = await startFakeUpstream({ models: ['llama'] });
    replicaB = await startFakeUpstream({ models: ['llama'] });
    gateway = await startGateway({
      catalog: {
        endpoints: [
          { name: 'replica-a', base_url: replicaA.url },
          { name: 'replica-b', base_url: replicaB.url },
        ],
        models: [{ id: 'llama', endpoints: ['replica-a', 'replica-b'], pricing: PRICE }],
      },
      env: { PROVIDER_CONCURRENCY: '16' },
    });
  });
  beforeEach(() => {
    replicaA.reset();
    replicaB.reset();
  });
  afterAll(async () => {
    await gateway.close();
    await replicaA.close();
    await replicaB.close();
  });

  it('takes turns between idle replicas for sequential requests', async () => {
    const served: string[] = [];
    for (let request = 0; request < 10; request += 1) {
      const response = await generateRest(gateway, { prompt: `sequential ${request}`, model_id: 'llama' });
      expect(response.status).toBe(200);
      served.push(response.body.metadata.provider);
    }

    expect(generationCalls(replicaA)).toHaveLength(5);
    expect(generationCalls(replicaB)).toHaveLength(5);
    expect(served.filter((name) => name === 'replica-a')).toHaveLength(5);
    expect(new Set(served)).toEqual(new Set(['replica-a', 'replica-b']));
  });

  it('splits a burst of concurrent requests evenly between equally fast replicas', async () => {
    replicaA.latencyMs = 300;
    replicaB.latencyMs = 300;

    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, index) => generateRest(gateway, { prompt: `burst ${index}`, model_id: 'llama' })),
    );

    expect(responses.map((response) => response.status)).toEqual(Array(8).fill(200));
    // Requests planned in the same instant see the same counts, so an even split is not guaranteed: a near one is.
    const onA = generationCalls(replicaA).length;
    expect(onA + generationCalls(replicaB).length).toBe(8);
    expect(onA).toBeGreaterThanOrEqual(3);
    expect(onA).toBeLessThanOrEqual(5);
    expect(replicaA.maxInFlight).toBe(onA);
    expect(replicaB.maxInFlight).toBe(8 - onA);
  });

  it('sends new requests to the replica with fewer in flight while the other is held by a slow answer', async () => {
    replicaA.latencyMs = 1500;
    const pending: Array<Promise<RestResponse>> = [];
    // One request at a time: each starts once the previous one is answered or known to be held upstream.
    for (let request = 0; request < 6; request += 1) {
      const heldBefore = generationCalls(replicaA).length;
      const response = generateRest(gateway, { prompt: `while a is slow ${request}`, model_id: 'llama' });
      pending.push(response);
      expect(await answeredOrHeld(response, () => generationCalls(replicaA).length > heldBefore)).not.toBe('neither');
    }
    const responses = await Promise.all(pending);

    expect(responses.map((response) => response.status)).toEqual(Array(6).fill(200));
    // Round robin alone would give the slow replica three of the six.
    expect(generationCalls(replicaA)).toHaveLength(1);
    expect(generationCalls(replicaB)).toHaveLength(5);
  });
});

describe('retries honour the upstream’s Retry-After, up to UPSTREAM_RETRY_AFTER_MAX_MS', () => {
  let limited: FakeUpstream;
  let spare: FakeUpstream;
  let gateway: RunningGateway;
  const RETRY_AFTER_MAX_MS = 1500;

  beforeAll(async () => {
    // One catalog entry per upstream id per endpoint: an endpoint maps each id it lists to one entry.
    limited = await startFakeUpstream({ models: ['rl-upstream', 'rl-fallback-upstream'] });
    spare = await startFakeUpstream({ models: ['rl-upstream'] });
    gateway = await startGateway({
      catalog: {
        endpoints: [
          { name: 'limited', base_url: limited.url },
          { name: 'spare', base_url: spare.url },
        ],
        models: [
          { id: 'rl-model', provider: 'limited', upstream_model: 'rl-upstream', pricing: PRICE },
          { id: 'rl-with-fallback', provider: 'limited', upstream_model: 'rl-fallback-upstream', fallbacks: ['rl-backup'], pricing: PRICE },
          { id: 'rl-backup', provider: 'spare', upstream_model: 'rl-upstream', pricing: PRICE },
        ],
      },
      env: {
        UPSTREAM_MAX_RETRIES: '2',
        // A backoff far below the waits measured here: any gap comes from the Retry-After.
        UPSTREAM_RETRY_BASE_MS: '1',
        UPSTREAM_RETRY_AFTER_MAX_MS: String(RETRY_AFTER_MAX_MS),
        BREAKER_FAILURES: '1000',
      },
    });
  });
  beforeEach(() => {
    limited.reset();
    spare.reset();
  });
  afterAll(async () => {
    await gateway.close();
    await limited.close();
    await spare.close();
  });

  /** Milliseconds between the arrivals of consecutive generation calls at the fake. */
  const gapsOf = (fake: FakeUpstream): number[] =>
    generationCalls(fake)
      .slice(1)
      .map((call, index) => call.receivedAt - generationCalls(fake)[index]!.receivedAt);

  it('waits at least retry-after-ms before retrying a 429, then answers', async () => {
    limited.queueBehaviours({ kind: 'status', status: 429, headers: { 'retry-after-ms': '400' } });

    const result = await gateway.graphql(GENERATE, { prompt: 'rate limited once', model_id: 'rl-model' });

    expect(result.body.errors).toBeUndefined();
    expect(result.body.data.generate.metadata.attempts).toEqual([
      attempt('rl-model', 'limited', 'upstream_rate_limited'),
      attempt('rl-model', 'limited', null),
    ]);
    expect(generationCalls(limited)).toHaveLength(2);
    // Date.now() at each arrival: a millisecond's rounding either side.
    expect(gapsOf(limited)[0]).toBeGreaterThanOrEqual(400 - 2);
  });

  it('waits at least retry-after seconds before retrying a 429 (REST)', async () => {
    limited.queueBehaviours({ kind: 'status', status: 429, headers: { 'retry-after': '1' } });

    const response = await generateRest(gateway, { prompt: 'rate limited for a second', model_id: 'rl-model' });

    expect(response.status).toBe(200);
    expect(generationCalls(limited)).toHaveLength(2);
    expect(gapsOf(limited)[0]).toBeGreaterThanOrEqual(1000 - 2);
  });

  it('answers 429 upstream_rate_limited with a Retry-After header once the retries are spent', async () => {
    limited.defaultBehaviour = { kind: 'status', status: 429, headers: { 'retry-after-ms': '50' } };

    const response = await generateRest(gateway, { prompt: 'always limited', model_id: 'rl-model' });

    expect(response.status).toBe(429);
    expect(response.body.error).toBe('upstream_rate_limited');
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(generationCalls(limited)).toHaveLength(3);
    for (const gap of gapsOf(limited)) expect(gap).toBeGreaterThanOrEqual(50 - 2);
  });

  it('does not wait for a Retry-After above the cap: REST answers 429 at once with the upstream’s Retry-After', async () => {
    limited.defaultBehaviour = { kind: 'status', status: 429, headers: { 'retry-after': '5' } };

    const startedAt = performance.now();
    const response = await generateRest(gateway, { prompt: 'come back in five seconds', model_id: 'rl-model' });
    const elapsedMs = performance.now() - startedAt;

    expect(response.status).toBe(429);
    expect(response.body.error).toBe('upstream_rate_limited');
    expect(response.headers.get('retry-after')).toBe('5');
    expect(elapsedMs).toBeLessThan(RETRY_AFTER_MAX_MS);
    // One call: neither retried nor waited for.
    expect(generationCalls(limited)).toHaveLength(1);
  });

  it('does not wait for a Retry-After above the cap: /graphql answers upstream_rate_limited at once with the Retry-After header', async () => {
    limited.defaultBehaviour = { kind: 'status', status: 429, headers: { 'retry-after': '5' } };

    const startedAt = performance.now();
    const graphql = await gateway.graphql(GENERATE, { prompt: 'come back in five seconds', model_id: 'rl-model' });
    const elapsedMs = performance.now() - startedAt;

    expect(errorOf(graphql.body)).toMatchObject({ code: 'upstream_rate_limited' });
    expect(elapsedMs).toBeLessThan(RETRY_AFTER_MAX_MS);
    expect(generationCalls(limited)).toHaveLength(1);
    expect(graphql.headers.get('retry-after')).toBe('5');
  });

  it('goes to the fallback at once instead of waiting for a Retry-After above the cap', async () => {
    limited.defaultBehaviour = { kind: 'status', status: 429, headers: { 'retry-after': '5' } };

    const startedAt = performance.now();
    const response = await generateRest(gateway, { prompt: 'someone else please', model_id: 'rl-with-fallback' });
    const elapsedMs = performance.now() - startedAt;

    expect(response.status).toBe(200);
    expect(response.body.metadata.provider).toBe('spare');
    expect(response.body.metadata.attempts).toEqual([
      attempt('rl-with-fallback', 'limited', 'upstream_rate_limited'),
      attempt('rl-backup', 'spare', null),
    ]);
    expect(elapsedMs).toBeLessThan(RETRY_AFTER_MAX_MS);
    expect(generationCalls(limited)).toHaveLength(1);
  });
});

describe('circuit breaker: an endpoint that keeps failing is skipped until a probe finds it well', () => {
  const HALF_OPEN_MS = 1000;
  const breakerEnv = { BREAKER_FAILURES: '3', BREAKER_HALF_OPEN_MS: String(HALF_OPEN_MS), UPSTREAM_MAX_RETRIES: '0' };

  describe('with a model on one endpoint, the only one configured', () => {
    let flaky: FakeUpstream;
    let gateway: RunningGateway;
    let trippedAt = 0;

    beforeAll(async () => {
      flaky = await startFakeUpstream({ models: ['solo-upstream'] });
      // No OPENAI_API_KEY: the openai provider is unconfigured; `flaky` is the only remote endpoint.
      gateway = await startGateway({
        catalog: {
          endpoints: [{ name: 'flaky', base_url: flaky.url }],
          models: [{ id: 'solo', provider: 'flaky', upstream_model: 'solo-upstream', pricing: PRICE }],
        },
        env: { ...breakerEnv, OPENAI_API_KEY: undefined },
      });
    });
    afterAll(async () => {
      await gateway.close();
      await flaky.close();
    });

    it('shows the breaker closed and the gateway ready before any failure', async () => {
      const { status, provider } = await providerOf(gateway, 'flaky');
      expect(provider).toMatchObject({ name: 'flaky', state: 'up', breaker: 'closed' });
      expect(status).toBe('healthy');
      const ready = await rest(gateway, 'GET', '/ready');
      expect(ready.status).toBe(200);
      expect(ready.body.checks.endpoints_available).toBe(true);
    });

    it('opens after 3 failures: the 4th request answers 503 model_unavailable with Retry-After without reaching the upstream', async () => {
      flaky.defaultBehaviour = { kind: 'status', status: 500 };
      for (let failure = 0; failure < 3; failure += 1) {
        const response = await generateRest(gateway, { prompt: `failure ${failure}`, model_id: 'solo' });
        expect([response.status, response.body.error]).toEqual([502, 'upstream_error']);
      }
      trippedAt = performance.now();
      expect(generationCalls(flaky)).toHaveLength(3);

      const refused = await generateRest(gateway, { prompt: 'the fourth', model_id: 'solo' });

      expect(refused.status).toBe(503);
      expect(refused.body.error).toBe('model_unavailable');
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(Math.ceil(HALF_OPEN_MS / 1000));
      expect(generationCalls(flaky)).toHaveLength(3);
    });

    it('shows the open breaker in GET /api/v1/status, and the status degraded', async () => {
      const { status, provider } = await providerOf(gateway, 'flaky');
      // Only meaningful while the half-open period has not yet passed.
      expect(performance.now() - trippedAt).toBeLessThan(HALF_OPEN_MS);
      expect(provider).toMatchObject({ name: 'flaky', breaker: 'open' });
      expect(status).toBe('degraded');
    });

    it('is not ready (503, endpoints_available false) while every configured endpoint’s breaker is open', async () => {
      const ready = await rest(gateway, 'GET', '/ready');
      const { providers } = await providerOf(gateway, 'flaky');
      expect(performance.now() - trippedAt).toBeLessThan(HALF_OPEN_MS);
      // Nothing else could serve: openai has no key, the local provider has no model.
      const byName = Object.fromEntries(providers.map((provider) => [provider.name, provider]));
      expect(byName).toMatchObject({
        flaky: { breaker: 'open' },
        openai: { state: 'unconfigured' },
        local: { model_count: 0 },
      });
      expect(Object.keys(byName).sort()).toEqual(['flaky', 'local', 'openai']);
      expectToMatchContract(ready, '/ready', 'get');
      expect(ready.body.checks.endpoints_available).toBe(false);
      expect(ready.status).toBe(503);
      expect(ready.body.ready).toBe(false);
    });

    it('lets a probe through after the half-open period; the recovered upstream closes the breaker', async () => {
      flaky.defaultBehaviour = { kind: 'ok' };
      const halfOpen = await poll(
        () => providerOf(gateway, 'flaky'),
        ({ provider }) => provider?.breaker === 'half_open',
        HALF_OPEN_MS + 3000,
      );
      expect(halfOpen.provider.breaker).toBe('half_open');
      expect(performance.now() - trippedAt).toBeGreaterThanOrEqual(HALF_OPEN_MS - 5);
      expect(generationCalls(flaky)).toHaveLength(3);

      const probe = await generateRest(gateway, { prompt: 'are you back', model_id: 'solo' });

      expect(probe.status).toBe(200);
      expect(probe.body.text).toBe(expectedReply('are you back', DEFAULT_MAX_TOKENS).text);
      expect(generationCalls(flaky)).toHaveLength(4);
      const { status, provider } = await providerOf(gateway, 'flaky');
      expect(provider.breaker).toBe('closed');
      expect(status).toBe('healthy');
      const ready = await rest(gateway, 'GET', '/ready');
      expect([ready.status, ready.body.checks.endpoints_available]).toEqual([200, true]);
      const after = await generateRest(gateway, { prompt: 'and again', model_id: 'solo' });
      expect(after.status).toBe(200);
    });
  });

  describe('with replicas and fallbacks', () => {
    let replicaA: FakeUpstream;
    let replicaB: FakeUpstream;
    let lone: FakeUpstream;
    let gateway: RunningGateway;

    beforeAll(async () => {
      replicaA = await startFakeUpstream({ models: ['pair-upstream'] });
      replicaB = await startFakeUpstream({ models: ['pair-upstream'] });
      lone = await startFakeUpstream({ models: ['lone-upstream'] });
      gateway = await startGateway({
        catalog: {
          endpoints: [
            { name: 'rep-a', base_url: replicaA.url },
            { name: 'rep-b', base_url: replicaB.url },
            { name: 'lone', base_url: lone.url },
          ],
          models: [
            { id: 'pair', endpoints: ['rep-a', 'rep-b'], upstream_model: 'pair-upstream', pricing: PRICE },
            { id: 'lone-model', provider: 'lone', upstream_model: 'lone-upstream', fallbacks: ['pair'], pricing: PRICE },
          ],
        },
        env: breakerEnv,
      });
    });
    afterAll(async () => {
      await gateway.close();
      await replicaA.close();
      await replicaB.close();
      await lone.close();
    });

    it('serves every request from the healthy replica, and once the broken one’s breaker is open sends it nothing', async () => {
      replicaA.defaultBehaviour = { kind: 'status', status: 500 };
      let sent = 0;
      while (generationCalls(replicaA).length < 3 && sent < 20) {
        const response = await generateRest(gateway, { prompt: `spread ${sent}`, model_id: 'pair' });
        sent += 1;
        expect(response.status).toBe(200);
        expect(response.body.metadata.provider).toBe('rep-b');
        if (response.body.metadata.attempts.length > 1) {
          expect(response.body.metadata.attempts).toEqual([attempt('pair', 'rep-a', 'upstream_error'), attempt('pair', 'rep-b', null)]);
        }
      }
      expect(generationCalls(replicaA)).toHaveLength(3);

      const afterOpen = await Promise.all(
        Array.from({ length: 10 }, (_, index) => generateRest(gateway, { prompt: `after open ${index}`, model_id: 'pair' })),
      );

      expect(afterOpen.map((response) => response.status)).toEqual(Array(10).fill(200));
      for (const response of afterOpen) expect(response.body.metadata.attempts).toEqual([attempt('pair', 'rep-b', null)]);
      expect(generationCalls(replicaA)).toHaveLength(3);
      const { status, providers } = await providerOf(gateway, 'rep-a');
      const breakers = Object.fromEntries(providers.map((provider) => [provider.name, provider.breaker]));
      expect(breakers).toMatchObject({ 'rep-a': 'open', 'rep-b': 'closed' });
      expect(status).toBe('degraded');
      const ready = await rest(gateway, 'GET', '/ready');
      expect([ready.status, ready.body.checks.endpoints_available]).toEqual([200, true]);
    });

    it('sends a model whose endpoint’s breaker is open straight to its fallback without touching the broken endpoint', async () => {
      lone.defaultBehaviour = { kind: 'status', status: 500 };
      for (let failure = 0; failure < 3; failure += 1) {
        const response = await generateRest(gateway, { prompt: `lone failure ${failure}`, model_id: 'lone-model' });
        expect(response.status).toBe(200);
        expect(response.body.metadata.attempts[0]).toEqual(attempt('lone-model', 'lone', 'upstream_error'));
      }
      expect(generationCalls(lone)).toHaveLength(3);

      const startedAt = performance.now();
      const response = await generateRest(gateway, { prompt: 'lone is open now', model_id: 'lone-model' });

      expect(response.status).toBe(200);
      expect(response.body.model_id).toBe('lone-model');
      expect(response.body.metadata.attempts).toEqual([attempt('pair', response.body.metadata.provider, null)]);
      expect(generationCalls(lone)).toHaveLength(3);
      expect(performance.now() - startedAt).toBeLessThan(HALF_OPEN_MS);
    });
  });
});

describe('bulkhead: an endpoint’s connection slots and queue are bounded', () => {
  let narrow: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    narrow = await startFakeUpstream({ models: ['narrow-upstream'] });
    gateway = await startGateway({
      catalog: {
        endpoints: [{ name: 'narrow', base_url: narrow.url }],
        models: [{ id: 'queued', provider: 'narrow', upstream_model: 'narrow-upstream', pricing: PRICE }],
      },
      env: { PROVIDER_CONCURRENCY: '1', PROVIDER_QUEUE_LIMIT: '1' },
    });
  });
  afterAll(async () => {
    await gateway.close();
    await narrow.close();
  });

  it('refuses the request that finds the queue full at once with 503 model_unavailable and Retry-After, and records it failed', async () => {
    narrow.latencyMs = 600;
    const timed = async (prompt: string) => {
      const startedAt = performance.now();
      const response = await generateRest(gateway, { prompt, model_id: 'queued' });
      return { response, elapsedMs: performance.now() - startedAt };
    };

    const first = timed('holds the only slot');
    await poll(
      async () => generationCalls(narrow).length,
      (count) => count >= 1,
    );
    const [second, third] = await Promise.all([timed('waits in the queue'), timed('finds the queue full')]);
    const held = await first;

    const outcomes = [held, second, third];
    expect(outcomes.map(({ response }) => response.status).sort()).toEqual([200, 200, 503]);
    const refused = outcomes.find(({ response }) => response.status === 503)!;
    expect(refused.response.body.error).toBe('model_unavailable');
    expect(Number(refused.response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // At once: well before the slot's holder (600 ms upstream) is done.
    expect(refused.elapsedMs).toBeLessThan(400);
    expect(narrow.maxInFlight).toBe(1);
    expect(generationCalls(narrow)).toHaveLength(2);

    const failed = await rest(gateway, 'GET', '/generations?status=failed');
    expect(failed.status).toBe(200);
    expect(failed.body.generations).toHaveLength(1);
    expect(failed.body.generations[0]).toMatchObject({
      model_id: 'queued',
      status: 'failed',
      error: 'model_unavailable',
      cost_usd: 0,
    });
  });
});

describe('streams: POST /api/v1/generate/stream falls back before its first byte, never after', () => {
  const TIMEOUT_MS = 800;
  let primary: FakeUpstream;
  let backup: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    primary = await startFakeUpstream({ models: ['stream-upstream'] });
    backup = await startFakeUpstream({ models: ['stream-backup-upstream'] });
    gateway = await startGateway({
      catalog: {
        endpoints: [
          { name: 'stream-primary', base_url: primary.url },
          { name: 'stream-backup', base_url: backup.url },
        ],
        models: [
          {
            id: 'stream-main',
            provider: 'stream-primary',
            upstream_model: 'stream-upstream',
            fallbacks: ['stream-spare'],
            pricing: PRICE,
          },
          { id: 'stream-spare', provider: 'stream-backup', upstream_model: 'stream-backup-upstream', pricing: PRICE },
        ],
      },
      env: {
        UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
        UPSTREAM_MAX_RETRIES: '2',
        UPSTREAM_RETRY_BASE_MS: '1',
        BREAKER_FAILURES: '1000',
      },
    });
  });
  beforeEach(() => {
    primary.reset();
    backup.reset();
  });
  afterAll(async () => {
    await gateway.close();
    await primary.close();
    await backup.close();
  });

  const lastOf = (events: readonly ReceivedEvent[]) => events[events.length - 1]!;

  it('streams from the fallback when the primary fails before its headers, and the done event lists both', async () => {
    primary.defaultBehaviour = { kind: 'status', status: 500 };
    const prompt = 'stream me from somewhere';

    const opened = await openStream(`${gateway.url}/api/v1/generate/stream`, { prompt, model_id: 'stream-main' });
    expect(opened.status).toBe(200);
    const events = await opened.ended;

    const done = lastOf(events);
    expect(done.event).toBe('done');
    expect(joinedDeltas(events)).toBe(expectedReply(prompt, DEFAULT_MAX_TOKENS).text);
    const { metadata } = dataOf(done);
    expect(metadata).toMatchObject({ provider: 'stream-backup', upstream_model: 'stream-backup-upstream' });
    const primaryCalls = generationCalls(primary).length;
    expect(primaryCalls).toBe(3);
    expect(metadata.attempts).toEqual([
      ...Array.from({ length: primaryCalls }, () => attempt('stream-main', 'stream-primary', 'upstream_error')),
      attempt('stream-spare', 'stream-backup', null),
    ]);
    expect(generationCalls(backup)).toHaveLength(1);
    const row = await ledgerRow(gateway, metadata.generation_id);
    expect(row).toMatchObject({ source: 'stream', status: 'succeeded', provider: 'stream-backup' });
  });

  it('never retries a stream that stalls after its first chunk: one upstream call, then an upstream_timeout error event at the deadline', async () => {
    primary.queueBehaviours({ kind: 'stall-after', chunks: 1 });

    const startedAt = performance.now();
    const opened = await openStream(`${gateway.url}/api/v1/generate/stream`, { prompt: 'stall after one', model_id: 'stream-main' });
    expect(opened.status).toBe(200);
    const events = await opened.ended;

    const last = lastOf(events);
    expect(last.event).toBe('error');
    expect(dataOf(last).error).toBe('upstream_timeout');
    expect(joinedDeltas(events)).toBe('echo:');
    expect(last.receivedAt - startedAt).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(last.receivedAt - startedAt).toBeLessThan(TIMEOUT_MS + 500);
    expect(generationCalls(primary)).toHaveLength(1);
    expect(generationCalls(backup)).toHaveLength(0);
  });
});

describe('UPSTREAM_ATTEMPT_TIMEOUT_MS: a replica that stalls leaves time for the other', () => {
  let stalled: FakeUpstream;
  let healthy: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    stalled = await startFakeUpstream({ models: ['llama'] });
    healthy = await startFakeUpstream({ models: ['llama'] });
    gateway = await startGateway({
      catalog: {
        endpoints: [
          { name: 'stalled', base_url: stalled.url },
          { name: 'healthy', base_url: healthy.url },
        ],
        models: [{ id: 'llama', endpoints: ['stalled', 'healthy'], fallbacks: ['missing-model'] }],
      },
      env: { UPSTREAM_TIMEOUT_MS: '3000', UPSTREAM_ATTEMPT_TIMEOUT_MS: '200', BREAKER_FAILURES: '1000' },
    });
  });
  afterAll(async () => {
    await gateway.close();
    await stalled.close();
    await healthy.close();
  });

  it('gives up on the stalled replica after the attempt timeout and answers from the other, well inside the deadline', async () => {
    stalled.defaultBehaviour = { kind: 'timeout' };
    const answers: Array<{ provider: string; attempts: Attempt[]; wallMs: number }> = [];
    for (let request = 0; request < 4; request += 1) {
      const startedAt = performance.now();
      const response = await generateRest(gateway, { prompt: `stall ${request}`, model_id: 'llama' });
      expect(response.status).toBe(200);
      answers.push({ ...response.body.metadata, wallMs: performance.now() - startedAt });
    }

    expect(answers.every((answer) => answer.provider === 'healthy')).toBe(true);
    const detoured = answers.filter((answer) => answer.attempts.length === 2);
    // Ties take turns, so about half the requests try the stalled replica first.
    expect(detoured.length).toBeGreaterThan(0);
    for (const answer of detoured) {
      expect(answer.attempts).toEqual([attempt('llama', 'stalled', 'upstream_timeout'), attempt('llama', 'healthy', null)]);
      expect(answer.attempts[0]!.latency_ms).toBeGreaterThanOrEqual(190);
      expect(answer.wallMs).toBeLessThan(1500);
    }
    expect(generationCalls(healthy)).toHaveLength(4);
  });

  it('names a fallback the catalog does not list in the status warnings', async () => {
    const response = await rest(gateway, 'GET', '/status');
    expect(response.body.warnings).toContainEqual(expect.stringContaining('"llama" falls back to "missing-model"'));
  });
});
