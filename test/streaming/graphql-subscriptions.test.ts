/**
 * GraphQL subscriptions as their clients meet them (issue 15): `generate_stream` over GraphQL over SSE
 * (/graphql/stream, graphql-sse's distinct connections mode, with graphql-sse's own client and with
 * plain fetch) and over WebSocket (/graphql, graphql-ws's client on the `ws` package), against the real
 * gateway and the fake upstream. The deltas add up to the final text, recorded with source `stream`;
 * API keys, the shared `generate` rate limit, budgets and /graphql's document limits hold on both
 * transports; leaving mid-stream stops the upstream call and records the row `cancelled`.
 */
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { rest } from '../support/contract';
import { expectedReply, type FakeUpstream, startFakeUpstream } from '../support/fake-openai-upstream';
import { bearer, generationCalls, type LedgerGeneration } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { type RunningGateway, startGateway } from '../support/start-gateway';

const MODEL = 'stream-chat';
/** Each output token costs $0.001, so a budget of 0 has no room for it. */
const PRICED_MODEL = 'priced-stream-chat';

const catalogFor = (fake: FakeUpstream) => ({
  endpoints: [{ name: 'fake', base_url: fake.url }],
  models: [
    { id: MODEL, provider: 'fake', api: 'chat', context_length: 4096, tokenizer: 'cl100k_base' },
    { id: PRICED_MODEL, provider: 'fake', api: 'chat', context_length: 4096, pricing: { input_per_million: 0, output_per_million: 1000 } },
  ],
});

/** API_KEYS: each key is an admin named key-<its position>, so each test can own a caller (and its counters). */
const KEYS = Array.from({ length: 8 }, (_, index) => `subscriber-key-${index + 1}-0123456789`);
const callerOf = (key: string): string => `key-${KEYS.indexOf(key) + 1}`;

const PROMPT = 'tell me about streams';
const STREAM = `subscription ($prompt: String!, $model_id: String!, $max_tokens: Int) {
  generate_stream(prompt: $prompt, model_id: $model_id, max_tokens: $max_tokens) {
    text
    response { text model_id metrics { output_tokens } metadata { generation_id finish_reason } }
  }
}`;
const streamOf = (prompt: string, maxTokens: number, modelId = MODEL) => ({
  query: STREAM,
  variables: { prompt, model_id: modelId, max_tokens: maxTokens },
});

/** A GraphQL result as it arrived (a `next` event or message). */
interface Result {
  data?: any;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

/** What a client saw of one operation: its results, and how it failed outside them (errors, a close event, a network error). */
interface Outcome {
  readonly results: Result[];
  readonly failure?: any;
}

interface Credentials {
  /** Sent as `Authorization: Bearer` on the request (SSE) or the upgrade (WebSocket). */
  readonly header?: string;
  /** WebSocket only: sent as `connectionParams.authorization`. */
  readonly params?: string;
}

interface Transport {
  readonly name: string;
  /** Subscribes (or runs any operation): the results as they arrive. */
  iterate(
    payload: { query: string; variables?: Record<string, unknown>; operationName?: string },
    credentials: Credentials,
  ): AsyncIterator<Result>;
}

async function collect(results: AsyncIterator<Result>): Promise<Outcome> {
  const seen: Result[] = [];
  try {
    for (;;) {
      const next = await results.next();
      if (next.done) return { results: seen };
      seen.push(next.value);
    }
  } catch (failure) {
    return { results: seen, failure };
  }
}

/** The code of an operation's refusal, wherever the transport put it: its one result, or an `error` message. */
function refusalCode(outcome: Outcome): unknown {
  const inResult = outcome.results[0]?.errors?.[0]?.extensions?.code;
  if (inResult !== undefined) return inResult;
  return Array.isArray(outcome.failure) ? outcome.failure[0]?.extensions?.code : undefined;
}

/** A client of each transport for one gateway and key. */
function clientsOf(gateway: RunningGateway, key: string) {
  return {
    sseClient: createSseClient({ url: `${gateway.url}/graphql/stream`, headers: bearer(key), retryAttempts: 0 }),
    wsClient: createWsClient({
      url: `${gateway.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${key}` },
      retryAttempts: 0,
    }),
  };
}

const deltasOf = (outcome: Outcome) => outcome.results.map((result) => result.data?.generate_stream);

describe('GraphQL subscriptions over SSE and WebSocket', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  const disposals: Array<() => unknown> = [];

  const sse: Transport = {
    name: 'GraphQL over SSE',
    iterate: (payload, credentials) => {
      const client = createSseClient({
        url: `${gateway.url}/graphql/stream`,
        headers: credentials.header ? bearer(credentials.header) : {},
        retryAttempts: 0,
      });
      disposals.push(() => client.dispose());
      return client.iterate(payload)[Symbol.asyncIterator]() as AsyncIterator<Result>;
    },
  };
  const webSocket: Transport = {
    name: 'WebSocket',
    iterate: (payload, credentials) => {
      const headers = credentials.header ? bearer(credentials.header) : undefined;
      // graphql-ws constructs its socket as `new WebSocket(url, protocol)`: the header goes in here.
      class WebSocketWithHeaders extends WebSocket {
        constructor(address: string | URL, protocols?: string | string[]) {
          super(address, protocols, { headers });
        }
      }
      const client = createWsClient({
        url: `${gateway.url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocketWithHeaders,
        connectionParams: credentials.params ? { authorization: `Bearer ${credentials.params}` } : undefined,
        retryAttempts: 0,
      });
      disposals.push(() => client.dispose());
      return client.iterate(payload)[Symbol.asyncIterator]() as AsyncIterator<Result>;
    },
  };
  const transports = [sse, webSocket];
  /** The main key on each transport: a header for SSE, connectionParams for WebSocket (as a browser sends it). */
  const keyed = (key: string) => ({ header: key, params: key });

  const ledgerRow = async (generationId: string): Promise<LedgerGeneration> => {
    const response = await rest(gateway, 'GET', `/generations/${generationId}`, undefined, bearer(KEYS[0]!));
    expect(response.status).toBe(200);
    return response.body as LedgerGeneration;
  };
  const latestRowOf = async (key: string): Promise<LedgerGeneration | undefined> => {
    const response = await rest(gateway, 'GET', `/generations?caller=${callerOf(key)}&limit=1`, undefined, bearer(KEYS[0]!));
    return (response.body as { generations: LedgerGeneration[] }).generations[0];
  };

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL, PRICED_MODEL] });
    gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: KEYS.join(',') } });
  });
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    await Promise.all(disposals.splice(0).map((dispose) => dispose()));
  });

  describe.each(transports)('$name', (transport) => {
    it('streams generate_stream: the deltas make the final text, the fake reply, recorded with source stream', async () => {
      const expected = expectedReply(PROMPT, 16);
      const outcome = await collect(transport.iterate(streamOf(PROMPT, 16), keyed(KEYS[0]!)));
      expect(outcome.failure).toBeUndefined();
      expect(outcome.results.flatMap((result) => result.errors ?? [])).toEqual([]);
      const events = deltasOf(outcome);
      const last = events.at(-1);
      expect(events.slice(0, -1).every((event) => event.response === null && event.text.length > 0)).toBe(true);
      expect(events.map((event) => event.text).join('')).toBe(last.response.text);
      expect(last.response.text).toBe(expected.text);
      expect(last.response).toMatchObject({ model_id: MODEL, metadata: { finish_reason: 'stop' } });
      // One event per upstream chunk ("echo:", " tell", ...), then the whole answer.
      expect(events).toHaveLength(expected.text.split(' ').length + 1);
      expect(generationCalls(fake)[0]?.body).toMatchObject({ stream: true });

      const row = await ledgerRow(last.response.metadata.generation_id);
      expect(row).toMatchObject({
        source: 'stream',
        status: 'succeeded',
        text: expected.text,
        caller: callerOf(KEYS[0]!),
        model_id: MODEL,
      });
    });

    it('runs queries too, with the caller of the key', async () => {
      const outcome = await collect(transport.iterate({ query: '{ health { status } }' }, keyed(KEYS[0]!)));
      expect(outcome).toEqual({ results: [{ data: { health: { status: 'healthy' } } }] });
    });

    it('refuses a budget with no room with budget_exceeded before any event, without calling the upstream', async () => {
      const budget = await rest(
        gateway,
        'POST',
        '/budgets',
        { scope: 'global', model_id: PRICED_MODEL, limit_usd: 0, period: 'month' },
        bearer(KEYS[0]!),
      );
      expect(budget.status).toBe(201);
      try {
        const outcome = await collect(transport.iterate(streamOf(PROMPT, 16, PRICED_MODEL), keyed(KEYS[0]!)));
        expect(outcome.results).toHaveLength(1);
        expect(outcome.results[0]?.data ?? null).toBeNull();
        expect(refusalCode(outcome)).toBe('budget_exceeded');
        expect(generationCalls(fake)).toEqual([]);
      } finally {
        await rest(gateway, 'DELETE', `/budgets/${budget.body.id}`, undefined, bearer(KEYS[0]!));
      }
    });

    it('refuses an unknown model with model_not_found before any event', async () => {
      const outcome = await collect(transport.iterate(streamOf(PROMPT, 16, 'no-such-model'), keyed(KEYS[0]!)));
      expect(outcome.results).toHaveLength(1);
      expect(refusalCode(outcome)).toBe('model_not_found');
    });

    it('answers a variable of the wrong type with validation_error, as /graphql does', async () => {
      const payload = { query: STREAM, variables: { prompt: PROMPT, model_id: MODEL, max_tokens: 'many' } };
      const overHttp = await gateway.graphql(STREAM, payload.variables, bearer(KEYS[0]!));
      const outcome = await collect(transport.iterate(payload, keyed(KEYS[0]!)));
      expect(refusalCode(outcome)).toBe(overHttp.body.errors?.[0]?.extensions?.code);
      expect(refusalCode(outcome)).toBe('validation_error');
    });
  });

  describe('hostile documents', () => {
    /** `count` aliases of the event's text, inside the subscription. */
    const aliasedSubscription = (count: number): string =>
      `subscription { generate_stream(prompt: "hi", model_id: "${MODEL}") { ${Array.from({ length: count }, (_, index) => `t${index}: text`).join(' ')} } }`;
    /** `fragment F0 on Query { ...F1 }` … down to `health { status }`: each spread counts as a level. */
    const fragmentChain = (length: number): string =>
      `{ ...F0 } ${Array.from(
        { length },
        (_, index) => `fragment F${index} on Query { ${index === length - 1 ? 'health { status }' : `...F${index + 1}`} }`,
      ).join(' ')}`;
    /** About `tokens` lexical tokens: `query Main { health { status } }` and 5 per padding operation. */
    const manyTokens = (tokens: number): string =>
      `query Main { health { status } } ${Array.from({ length: Math.ceil((tokens - 8) / 5) }, (_, index) => `query P${index} { __typename }`).join(' ')}`;

    const hostile = [
      { name: 'too many aliases', code: 'too_many_aliases', payload: { query: aliasedSubscription(16) } },
      { name: 'too deep', code: 'query_too_deep', payload: { query: fragmentChain(8) } },
      { name: 'too many tokens', code: 'too_many_tokens', payload: { query: manyTokens(2100), operationName: 'Main' } },
    ];

    it.each(hostile)('refuses a document with $name on both transports with /graphql code $code', async ({ code, payload }) => {
      const overHttp = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(KEYS[0]!) },
        body: JSON.stringify(payload),
      });
      const httpCode = ((await overHttp.json()) as Result).errors?.[0]?.extensions?.code;
      expect([overHttp.status, httpCode]).toEqual([400, code]);
      for (const transport of transports) {
        const outcome = await collect(transport.iterate(payload, keyed(KEYS[0]!)));
        expect({ transport: transport.name, code: refusalCode(outcome) }).toEqual({ transport: transport.name, code });
        expect(outcome.results.flatMap((result) => (result.data ? [result.data] : []))).toEqual([]);
      }
      expect(generationCalls(fake)).toEqual([]);
    });

    it('runs the subscription with exactly the allowed aliases', async () => {
      for (const transport of transports) {
        const outcome = await collect(transport.iterate({ query: aliasedSubscription(15) }, keyed(KEYS[0]!)));
        expect(outcome.failure).toBeUndefined();
        expect(outcome.results.at(-1)?.data?.generate_stream).toHaveProperty('t14');
      }
    });
  });

  describe('API keys', () => {
    it('refuses GraphQL over SSE without a key, or with a wrong one, with 401 unauthorized', async () => {
      for (const headers of [{}, bearer('not-a-key-0123456789')]) {
        const response = await fetch(`${gateway.url}/graphql/stream`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
          body: JSON.stringify(streamOf(PROMPT, 16)),
        });
        const body = (await response.json()) as Result;
        expect([response.status, body.errors?.[0]?.extensions?.code]).toEqual([401, 'unauthorized']);
      }
      expect(generationCalls(fake)).toEqual([]);
    });

    it('closes a WebSocket without a key with 4401, saying a key is required', async () => {
      const outcome = await collect(webSocket.iterate(streamOf(PROMPT, 16), {}));
      expect(outcome.results).toEqual([]);
      expect(outcome.failure).toMatchObject({ code: 4401, reason: expect.stringContaining('An API key is required') });
      expect(generationCalls(fake)).toEqual([]);
    });

    it('closes a WebSocket whose connectionParams key is wrong with 4401', async () => {
      const outcome = await collect(webSocket.iterate(streamOf(PROMPT, 16), { params: 'not-a-key-0123456789' }));
      expect(outcome.failure).toMatchObject({ code: 4401, reason: 'The API key is not valid' });
      expect(generationCalls(fake)).toEqual([]);
    });

    it('refuses the WebSocket upgrade with 401 unauthorized when its Authorization header holds a wrong key', async () => {
      const socket = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', {
        headers: bearer('not-a-key-0123456789'),
      });
      const refusal = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
        socket.on('unexpected-response', (_request, response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => {
            body += chunk.toString('utf8');
          });
          response.on('end', () => resolve({ status: response.statusCode, body }));
        });
        socket.on('open', () => reject(new Error('the upgrade was accepted')));
        socket.on('error', () => undefined);
      });
      expect(refusal.status).toBe(401);
      expect(JSON.parse(refusal.body).errors[0].extensions.code).toBe('unauthorized');
    });

    it('takes the key from the upgrade header on WebSocket, with no connectionParams', async () => {
      const outcome = await collect(webSocket.iterate(streamOf(PROMPT, 4), { header: KEYS[1]! }));
      expect(outcome.failure).toBeUndefined();
      const last = deltasOf(outcome).at(-1);
      expect(last.response.text).toBe(expectedReply(PROMPT, 4).text);
      expect((await ledgerRow(last.response.metadata.generation_id)).caller).toBe(callerOf(KEYS[1]!));
    });

    it('refuses a WebSocket upgrade on any path other than /graphql', async () => {
      const socket = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/elsewhere`, 'graphql-transport-ws', {
        headers: bearer(KEYS[0]!),
      });
      const status = await new Promise<number | undefined>((resolve) => {
        socket.on('unexpected-response', (_request, response) => resolve(response.statusCode));
        socket.on('error', () => undefined);
      });
      expect(status).toBe(404);
    });
  });

  describe('GraphQL over SSE as curl sees it', () => {
    it('answers next events then complete, with the headers that stop proxies buffering', async () => {
      const response = await fetch(`${gateway.url}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(KEYS[0]!) },
        body: JSON.stringify(streamOf(PROMPT, 3)),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(response.headers.get('x-accel-buffering')).toBe('no');
      const text = await response.text();
      const events = [...text.matchAll(/^event: (\w+)\ndata:(.*)$/gm)].map(([, name, data]) => ({ name, data: data!.trim() }));
      expect(events.map((event) => event.name)).toEqual(['next', 'next', 'next', 'next', 'complete']);
      const texts = events.slice(0, 3).map((event) => JSON.parse(event.data).data.generate_stream.text);
      expect(texts.join('')).toBe(expectedReply(PROMPT, 3).text);
      expect(JSON.parse(events[3]!.data).data.generate_stream.response.text).toBe(expectedReply(PROMPT, 3).text);
    });

    it('answers 406 to a request that does not accept text/event-stream, and 405 to a GET', async () => {
      const notAccepted = await fetch(`${gateway.url}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(KEYS[0]!) },
        body: JSON.stringify({ query: '{ health { status } }' }),
      });
      expect(notAccepted.status).toBe(406);
      const get = await fetch(`${gateway.url}/graphql/stream?query=${encodeURIComponent('{ health { status } }')}`, {
        headers: { accept: 'text/event-stream', ...bearer(KEYS[0]!) },
      });
      expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    });
  });

  describe('leaving mid-stream', () => {
    // 40 words at one chunk per 100 ms: the stream would last four seconds.
    const LONG_PROMPT = Array.from({ length: 40 }, (_, index) => `word${index}`).join(' ');
    const leavers = [
      { name: 'closing the SSE connection', transport: sse, key: KEYS[2]!, leave: (events: AsyncIterator<Result>) => events.return?.() },
      {
        name: 'unsubscribing on WebSocket',
        transport: webSocket,
        key: KEYS[3]!,
        leave: (events: AsyncIterator<Result>) => events.return?.(),
      },
      {
        name: 'closing the WebSocket',
        transport: webSocket,
        key: KEYS[4]!,
        leave: async () => {
          for (const dispose of disposals.splice(0)) await dispose();
        },
      },
    ];

    // The first abort in a jest process formats error stacks through source maps and runs code paths for the
    // first time: tens to hundreds of milliseconds that belong to the test harness, not to the gateway.
    beforeAll(async () => {
      fake.chunkDelayMs = 100;
      const events = sse.iterate(streamOf(LONG_PROMPT, 64), keyed(KEYS[5]!));
      await events.next();
      await events.return?.();
      await poll(
        () => latestRowOf(KEYS[5]!),
        (latest) => latest?.status === 'cancelled',
      );
    });

    it.each(leavers)(
      '$name aborts the upstream call within 100 ms and records the row cancelled with the text so far',
      async ({ transport, key, leave }) => {
        fake.chunkDelayMs = 100;
        const expected = expectedReply(LONG_PROMPT, 64).text;
        const events = transport.iterate(streamOf(LONG_PROMPT, 64), keyed(key));
        const received: string[] = [];
        for (let index = 0; index < 3; index += 1) {
          const next = await events.next();
          expect(next.done).toBe(false);
          received.push(next.value.data.generate_stream.text);
        }
        const leftAt = performance.now();
        await leave(events);

        const upstream = await poll(
          async () => generationCalls(fake)[0],
          (request) => request?.closedEarlyAt !== undefined,
          3000,
        );
        expect(upstream?.closedEarlyAt).toBeDefined();
        expect(upstream!.closedEarlyAt! - leftAt).toBeLessThan(100);
        expect(upstream!.chunksSentAt.length).toBeLessThan(10);

        const row = await poll(
          () => latestRowOf(key),
          (latest) => latest?.status === 'cancelled',
        );
        expect(row).toMatchObject({ status: 'cancelled', source: 'stream', error: 'cancelled' });
        // What the client saw, and perhaps the chunk that was on its way.
        expect(row!.text?.startsWith(received.join(''))).toBe(true);
        expect(expected.startsWith(row!.text ?? '')).toBe(true);
        // The fake streams no per-chunk counts: the tokens so far are the tokenizer's count of that text.
        expect(row!.metrics.output_tokens).toBe(countCl100k(row!.text ?? ''));
      },
    );
  });
});

describe('GraphQL subscriptions and the generate rate limit', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  const disposals: Array<() => unknown> = [];
  const key = (index: number): string => KEYS[index]!;

  const overSse = (credential: string) => {
    const client = createSseClient({ url: `${gateway.url}/graphql/stream`, headers: bearer(credential), retryAttempts: 0 });
    disposals.push(() => client.dispose());
    return collect(client.iterate(streamOf(PROMPT, 2))[Symbol.asyncIterator]() as AsyncIterator<Result>);
  };
  const overWebSocket = (credential: string) => {
    const client = createWsClient({
      url: `${gateway.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${credential}` },
      retryAttempts: 0,
    });
    disposals.push(() => client.dispose());
    return collect(client.iterate(streamOf(PROMPT, 2))[Symbol.asyncIterator]() as AsyncIterator<Result>);
  };
  const generateOverGraphQL = (credential: string) =>
    gateway.graphql(`mutation { generate(prompt: "${PROMPT}", model_id: "${MODEL}", max_tokens: 2) { text } }`, {}, bearer(credential));

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL, PRICED_MODEL] });
    gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: KEYS.join(','), RATE_LIMIT_GENERATE: '1' } });
  });
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });
  afterEach(async () => {
    await Promise.all(disposals.splice(0).map((dispose) => dispose()));
  });

  it.each([
    ['GraphQL over SSE', overSse, 0],
    ['WebSocket', overWebSocket, 1],
  ] as const)('refuses the second %s subscription in the window with rate_limit_exceeded', async (_name, subscribe, index) => {
    const first = await subscribe(key(index));
    expect(first.results.at(-1)?.data?.generate_stream?.response?.text).toBe(expectedReply(PROMPT, 2).text);
    const second = await subscribe(key(index));
    expect(second.results).toHaveLength(1);
    expect(refusalCode(second)).toBe('rate_limit_exceeded');
  });

  it('counts generate_stream and the generate mutation in one bucket, on both transports', async () => {
    const generated = await generateOverGraphQL(key(2));
    expect(generated.body.errors).toBeUndefined();
    expect(refusalCode(await overSse(key(2)))).toBe('rate_limit_exceeded');
    expect(refusalCode(await overWebSocket(key(2)))).toBe('rate_limit_exceeded');

    const streamed = await overWebSocket(key(3));
    expect(streamed.failure).toBeUndefined();
    const refused = await generateOverGraphQL(key(3));
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('rate_limit_exceeded');
  });
});

describe('GraphQL subscriptions when the gateway shuts down', () => {
  let fake: FakeUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL, PRICED_MODEL] });
  });
  afterAll(() => fake?.close());

  it('ends open streams on both transports with service_unavailable, then closes, well within the shutdown timeout', async () => {
    const gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: KEYS.join(','), SHUTDOWN_TIMEOUT_MS: '10000' } });
    fake.chunkDelayMs = 100;
    const prompt = Array.from({ length: 40 }, (_, index) => `word${index}`).join(' ');
    const { sseClient, wsClient } = clientsOf(gateway, KEYS[0]!);
    try {
      const streams = [sseClient, wsClient].map(
        (client) => client.iterate(streamOf(prompt, 64))[Symbol.asyncIterator]() as AsyncIterator<Result>,
      );
      for (const events of streams) expect((await events.next()).done).toBe(false);

      const closingAt = performance.now();
      const closed = gateway.close();
      const outcomes = await Promise.all(streams.map(collect));
      await closed;
      expect(performance.now() - closingAt).toBeLessThan(3000);
      for (const outcome of outcomes) {
        expect(outcome.failure).toBeUndefined();
        expect(outcome.results.at(-1)?.errors?.[0]?.extensions?.code).toBe('service_unavailable');
      }
    } finally {
      sseClient.dispose();
      await wsClient.dispose();
      await gateway.close();
    }
  });

  it('ends a subscription still waiting for its upstream on both transports, so shutdown does not wait for it', async () => {
    const gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: KEYS.join(','), SHUTDOWN_TIMEOUT_MS: '10000' } });
    fake.reset();
    fake.latencyMs = 20_000;
    const { sseClient, wsClient } = clientsOf(gateway, KEYS[0]!);
    try {
      const outcomes = [sseClient, wsClient].map((client) =>
        collect(client.iterate(streamOf(PROMPT, 16))[Symbol.asyncIterator]() as AsyncIterator<Result>),
      );
      await poll(
        async () => generationCalls(fake).length,
        (calls) => calls === 2,
      );

      const closingAt = performance.now();
      await gateway.close();
      expect(performance.now() - closingAt).toBeLessThan(3000);
      for (const outcome of await Promise.all(outcomes)) {
        expect(outcome.results).toHaveLength(1);
        expect(outcome.results[0]?.errors).toHaveLength(1);
      }
      expect(generationCalls(fake).every((call) => call.closedEarlyAt !== undefined)).toBe(true);
    } finally {
      sseClient.dispose();
      await wsClient.dispose();
      await gateway.close();
    }
  });
});

describe('GraphiQL runs a subscription', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL, PRICED_MODEL] });
    gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: KEYS.join(',') } });
  });
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });

  it('streams generate_stream over a WebSocket to our own server, the key from the headers tab', async () => {
    const profile = await mkdtemp(path.join(os.tmpdir(), 'llmop-chromium-'));
    // The flags this workplace's closed network needs (as test/browser): no background traffic, no first-run pages.
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const sockets: string[] = [];
      page.on('websocket', (socket) => sockets.push(socket.url()));
      await page.goto(`${gateway.url}/graphql`);
      await page.locator('.graphiql-container').waitFor({ timeout: 20000 });
      fake.chunkDelayMs = 20;
      const query = `subscription Stream { generate_stream(prompt: "${PROMPT}", model_id: "${MODEL}", max_tokens: 16) { text response { text metadata { generation_id } } } }`;
      // GraphiQL's editors are CodeMirror 5 instances; setting their values is what typing would do, without auto-closed brackets.
      await page.evaluate(
        ({ document: operation, headers }) => {
          const editors = [...window.document.querySelectorAll('.CodeMirror')].map(
            (element) => (element as unknown as { CodeMirror: { getValue(): string; setValue(value: string): void } }).CodeMirror,
          );
          editors.find((editor) => editor.getValue().includes('query Overview'))?.setValue(operation);
          editors.find((editor) => editor.getValue().includes('YOUR_API_KEY'))?.setValue(headers);
        },
        { document: query, headers: JSON.stringify({ Authorization: `Bearer ${KEYS[6]!}` }) },
      );
      // GraphiQL parses the edited document (its operation name) after a debounce: a click that comes
      // first runs the example's operation. Click until the streamed answer shows.
      const result = page.locator('.result-window');
      const answered = result.getByText('"generation_id"');
      for (let attempt = 1; ; attempt += 1) {
        await page.locator('.graphiql-execute-button').click();
        try {
          await answered.waitFor({ timeout: attempt < 5 ? 2000 : 15000 });
          break;
        } catch (error) {
          if (attempt >= 5) throw error;
        }
      }
      // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, not a DOM node; innerText is what a person sees
      const shown = (await result.innerText()).replace(/\s+/g, ' ');
      expect(shown).toContain(`"text": "${expectedReply(PROMPT, 16).text}"`);
      expect(sockets).toEqual([`${gateway.url.replace(/^http/, 'ws')}/graphql`]);
      const row = await poll(
        () => rest(gateway, 'GET', `/generations?caller=${callerOf(KEYS[6]!)}&limit=1`, undefined, bearer(KEYS[0]!)),
        (response) => response.body.generations.length > 0,
      );
      expect(row.body.generations[0]).toMatchObject({ source: 'stream', status: 'succeeded' });
    } finally {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  }, 60000);
});
