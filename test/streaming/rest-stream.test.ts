/**
 * POST /api/v1/generate/stream as a client meets it (issue 15): server-sent events from the real
 * gateway, relayed from a fake OpenAI-compatible upstream that streams one word per chunk. The
 * deltas add up to the answer, each chunk arrives as the upstream sends it, whatever is refused
 * before the upstream answers is an ordinary JSON error, a failure mid-stream is one `error` event,
 * and every stream is one ledger row with source `stream`.
 */
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { expectToMatchContract, expectToMatchSchemaAt, rest, type RestResponse } from '../support/contract';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { bearer, generationCalls, type LedgerGeneration } from '../support/ledger-fixtures';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { dataOf, joinedDeltas, openStream, type OpenedStream, type ReceivedEvent } from './sse-client';

const ADMIN_KEY = 'stream-admin-key-0123456789';
const OTHER_KEY = 'stream-other-key-0123456789';
const asAdmin = bearer(ADMIN_KEY);

const CHAT_MODEL = 'tiny-chat';
const COMPLETION_MODEL = 'tiny-completion';
const PRICE = { input_per_million: 3, output_per_million: 15 };

const catalogFor = (fake: FakeUpstream) => ({
  endpoints: [{ name: 'vllm', base_url: fake.url }],
  models: [
    { id: CHAT_MODEL, provider: 'vllm', api: 'chat', context_length: 4096, tokenizer: 'cl100k_base', pricing: PRICE },
    { id: COMPLETION_MODEL, provider: 'vllm', api: 'completion', context_length: 4096, tokenizer: 'cl100k_base', pricing: PRICE },
  ],
});

/** An opened stream's error answer in the shape the contract helpers check. */
const asRestResponse = (opened: OpenedStream): RestResponse => ({
  status: opened.status,
  headers: new Headers(Object.entries(opened.headers).map(([name, value]): [string, string] => [name, String(value)])),
  body: opened.json,
});

const GENERATE_RESPONSE = '#/components/schemas/GenerateResponse';
const ERROR_RESPONSE = '#/components/schemas/ErrorResponse';
const STREAM_DELTA = '#/components/schemas/StreamDelta';

/** Every event is a delta but the last, which is `done` (or `error`); returns the last one's data. */
function lastEventOf(events: readonly ReceivedEvent[], name: 'done' | 'error'): any {
  expect(events.length).toBeGreaterThan(0);
  const last = events[events.length - 1]!;
  expect(events.slice(0, -1).map((event) => event.event)).toEqual(events.slice(0, -1).map(() => 'delta'));
  expect(last.event).toBe(name);
  for (const delta of events.slice(0, -1)) expectToMatchSchemaAt(dataOf(delta), STREAM_DELTA, 'a delta event');
  return dataOf(last);
}

describe('POST /api/v1/generate/stream', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  const stream = (body: Record<string, unknown>, headers = asAdmin): Promise<OpenedStream> =>
    openStream(`${gateway.url}/api/v1/generate/stream`, body, headers);
  const ledgerRow = async (generationId: string): Promise<LedgerGeneration> => {
    const response = await rest(gateway, 'GET', `/generations/${generationId}`, undefined, asAdmin);
    expectToMatchContract(response, '/generations/{generation_id}', 'get');
    expect(response.status).toBe(200);
    return response.body as LedgerGeneration;
  };
  /** The newest row of the ledger with this status (each test here makes at most one). */
  const newestRow = async (status: LedgerGeneration['status']): Promise<LedgerGeneration> => {
    const response = await rest(gateway, 'GET', `/generations?status=${status}&limit=1`, undefined, asAdmin);
    expect(response.status).toBe(200);
    return response.body.generations[0] as LedgerGeneration;
  };

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [CHAT_MODEL, COMPLETION_MODEL] });
    gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: `${ADMIN_KEY},${OTHER_KEY}` } });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  describe.each([
    ['a chat model', CHAT_MODEL],
    ['a completion model', COMPLETION_MODEL],
  ])('for %s', (_kind, modelId) => {
    it.each([
      ['whole', 16, 'stop'],
      ['cut by max_tokens', 3, 'length'],
    ])("sends deltas that add up to the done event's text and to POST /generate's answer (%s)", async (_how, maxTokens, finish) => {
      const prompt = 'Stream these seven words one by one';
      const body = { prompt, model_id: modelId, max_tokens: maxTokens };
      const reply = expectedReply(prompt, maxTokens);

      const opened = await stream(body);
      expect(opened.status).toBe(200);
      const events = await opened.ended;
      const done = lastEventOf(events, 'done');
      expectToMatchSchemaAt(done, GENERATE_RESPONSE, 'the done event');

      expect(events.length - 1).toBe(reply.completionTokens);
      expect(joinedDeltas(events)).toBe(reply.text);
      expect(done.text).toBe(reply.text);
      expect(done).toMatchObject({
        model_id: modelId,
        prompt,
        metrics: {
          input_tokens: reply.promptTokens,
          output_tokens: reply.completionTokens,
          total_tokens: reply.promptTokens + reply.completionTokens,
        },
        metadata: { finish_reason: finish, provider: 'vllm', token_source: 'upstream', generation_id: expect.any(String) },
      });
      const [upstreamCall] = generationCalls(fake);
      expect(upstreamCall!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });

      const whole = await rest(gateway, 'POST', '/generate', body, asAdmin);
      expect(whole.status).toBe(200);
      expect(whole.body.text).toBe(done.text);
      expect(whole.body.metrics).toMatchObject({ input_tokens: done.metrics.input_tokens, output_tokens: done.metrics.output_tokens });

      const row = await ledgerRow(done.metadata.generation_id);
      expect(row).toMatchObject({
        source: 'stream',
        status: 'succeeded',
        error: null,
        model_id: modelId,
        prompt,
        text: reply.text,
        metrics: { input_tokens: reply.promptTokens, output_tokens: reply.completionTokens },
      });
      expect(row.cost_usd).toBeCloseTo(done.metadata.cost_usd.total, 12);
    });
  });

  it('answers text/event-stream with the headers that stop proxies from buffering', async () => {
    const opened = await stream({ prompt: 'headers please', model_id: CHAT_MODEL });
    await opened.ended;
    expect(opened.status).toBe(200);
    expect(opened.headers['content-type']).toMatch(/^text\/event-stream\b/);
    expect(opened.headers['cache-control']).toBe('no-cache');
    expect(opened.headers['x-accel-buffering']).toBe('no');
    expect(opened.headers['x-request-id']).toEqual(expect.any(String));
  });

  it('delivers each upstream chunk as it comes, not held back for the next one (100 ms later)', async () => {
    // One stream first: the first one through a fresh process also pays for loading and compiling its code.
    expect((await (await stream({ prompt: 'warm up', model_id: CHAT_MODEL })).ended).at(-1)?.event).toBe('done');
    fake.reset();
    fake.chunkDelayMs = 100;
    const prompt = 'one chunk every tenth of a second for a while so that many chunks are timed';
    const opened = await stream({ prompt, model_id: CHAT_MODEL, max_tokens: 64 });
    const events = await opened.ended;
    expect(events.at(-1)?.event).toBe('done');
    const deltas = events.filter((event) => event.event === 'delta');
    const [upstreamCall] = generationCalls(fake);
    const sentAt = upstreamCall!.chunksSentAt;
    expect(deltas).toHaveLength(sentAt.length);
    expect(deltas.length).toBe(expectedReply(prompt, 64).completionTokens);
    const lags = deltas.map((delta, index) => delta.receivedAt - sentAt[index]!);
    // A relay that buffered would deliver a chunk with the next, 100 ms later. Half that bounds every chunk
    // (a GC pause on a busy machine stays well under it); the typical chunk arrives within a few ms.
    for (const lag of lags) {
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(50);
    }
    const sorted = [...lags].sort((left, right) => left - right);
    expect(sorted[Math.floor(sorted.length / 2)]).toBeLessThan(10);
  });

  it('counts output tokens with the tokenizer when the upstream streams no usage', async () => {
    fake.queueBehaviours({ kind: 'no-usage' });
    const opened = await stream({ prompt: 'no usage in this stream', model_id: CHAT_MODEL });
    const done = lastEventOf(await opened.ended, 'done');
    const reply = expectedReply('no usage in this stream');
    expect(done.text).toBe(reply.text);
    expect(done.metadata.token_source).toBe('tokenizer');
    expect(done.metrics.output_tokens).toBe(countCl100k(reply.text));
    const row = await ledgerRow(done.metadata.generation_id);
    expect(row.metrics).toMatchObject({ input_tokens: done.metrics.input_tokens, output_tokens: done.metrics.output_tokens });
  });

  it('ends a stream the upstream cuts mid-way with the deltas sent, one error event, and a failed row with the text so far', async () => {
    fake.queueBehaviours({ kind: 'cut-after', chunks: 2 });
    const opened = await stream({ prompt: 'this upstream dies after two chunks', model_id: CHAT_MODEL });
    expect([opened.status, opened.json]).toEqual([200, undefined]);
    const events = await opened.ended;
    const error = lastEventOf(events, 'error');
    expectToMatchSchemaAt(error, ERROR_RESPONSE, 'the error event');
    expect(error.error).toBe('upstream_error');
    const textSoFar = 'echo: this';
    expect(joinedDeltas(events)).toBe(textSoFar);

    const row = await newestRow('failed');
    expect(row).toMatchObject({ source: 'stream', status: 'failed', error: 'upstream_error', text: textSoFar });
    expect(row.metrics.output_tokens).toBe(countCl100k(textSoFar));
    expect(row.cost_usd).toBeGreaterThan(0);
  });

  describe('refuses before the status line, as ordinary JSON errors', () => {
    const expectRefusal = (opened: OpenedStream, status: number, code: string): void => {
      expect(opened.status).toBe(status);
      expect(opened.headers['content-type']).toMatch(/^application\/json\b/);
      expect(opened.events).toEqual([]);
      expect((opened.json as { error: string }).error).toBe(code);
    };

    it('answers an upstream that fails before streaming with its error status and an ErrorResponse', async () => {
      fake.queueBehaviours({ kind: 'status', status: 500 });
      const opened = await stream({ prompt: 'the upstream refuses', model_id: CHAT_MODEL });
      expectRefusal(opened, 502, 'upstream_error');
      expectToMatchSchemaAt(opened.json, ERROR_RESPONSE, '502 from /generate/stream');
      expect(generationCalls(fake)).toHaveLength(1);
    });

    it.each([
      ['a missing prompt', { model_id: CHAT_MODEL }],
      ['max_tokens 0', { prompt: 'hello', model_id: CHAT_MODEL, max_tokens: 0 }],
      ['an empty prompt', { prompt: '', model_id: CHAT_MODEL }],
    ])('answers 400 validation_error for %s, without calling the upstream', async (_what, body) => {
      const opened = await stream(body);
      expectRefusal(opened, 400, 'validation_error');
      expectToMatchContract(asRestResponse(opened), '/generate/stream', 'post');
      expect(generationCalls(fake)).toEqual([]);
    });

    it('answers 404 model_not_found for an unknown model', async () => {
      const opened = await stream({ prompt: 'hello', model_id: 'no-such-model' });
      expectRefusal(opened, 404, 'model_not_found');
      expectToMatchContract(asRestResponse(opened), '/generate/stream', 'post');
      expect(generationCalls(fake)).toEqual([]);
    });

    it('answers 401 without a key', async () => {
      const opened = await stream({ prompt: 'hello', model_id: CHAT_MODEL }, {});
      expectRefusal(opened, 401, 'unauthorized');
      expectToMatchContract(asRestResponse(opened), '/generate/stream', 'post');
    });

    it('answers 402 budget_exceeded when a budget that applies has no room, without calling the upstream', async () => {
      const created = await rest(
        gateway,
        'POST',
        '/budgets',
        { scope: 'global', model_id: CHAT_MODEL, limit_usd: 0, period: 'total' },
        asAdmin,
      );
      expect(created.status).toBe(201);
      try {
        const opened = await stream({ prompt: 'no money left', model_id: CHAT_MODEL });
        expectRefusal(opened, 402, 'budget_exceeded');
        expectToMatchContract(asRestResponse(opened), '/generate/stream', 'post');
        expect(generationCalls(fake)).toEqual([]);
      } finally {
        expect((await rest(gateway, 'DELETE', `/budgets/${created.body.id}`, undefined, asAdmin)).status).toBe(204);
      }
    });
  });
});

describe('POST /api/v1/generate/stream under limits', () => {
  let fake: FakeUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [CHAT_MODEL, COMPLETION_MODEL] });
  });
  beforeEach(() => fake.reset());
  afterAll(() => fake.close());

  it('counts against the generate rate limit, shared with POST /generate: the second call is 429 with Retry-After', async () => {
    const keys = ['limit-key-one-0123456789', 'limit-key-two-0123456789'];
    const gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: keys.join(','), RATE_LIMIT_GENERATE: '1' } });
    try {
      const url = `${gateway.url}/api/v1/generate/stream`;
      const body = { prompt: 'rate limited', model_id: CHAT_MODEL };

      const first = await openStream(url, body, bearer(keys[0]!));
      expect(first.status).toBe(200);
      await first.ended;
      const second = await openStream(url, body, bearer(keys[0]!));
      expect(second.status).toBe(429);
      expect(second.headers['retry-after']).toMatch(/^\d+$/);
      expect((second.json as { error: string }).error).toBe('rate_limit_exceeded');
      expectToMatchContract(asRestResponse(second), '/generate/stream', 'post');

      // The other key spends its one call on POST /generate: its stream is refused from the same bucket.
      expect((await rest(gateway, 'POST', '/generate', body, bearer(keys[1]!))).status).toBe(200);
      const afterGenerate = await openStream(url, body, bearer(keys[1]!));
      expect(afterGenerate.status).toBe(429);
      expect(afterGenerate.headers['retry-after']).toMatch(/^\d+$/);
      // And the first key's POST /generate is refused by the stream it made.
      expect((await rest(gateway, 'POST', '/generate', body, bearer(keys[0]!))).status).toBe(429);
      expect(generationCalls(fake)).toHaveLength(2);
    } finally {
      await gateway.close();
    }
  });

  it('ends a stream that outlives UPSTREAM_TIMEOUT_MS with one error event and a failed row with the text so far', async () => {
    const gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: ADMIN_KEY, UPSTREAM_TIMEOUT_MS: '500' } });
    try {
      fake.chunkDelayMs = 200;
      const opened = await openStream(
        `${gateway.url}/api/v1/generate/stream`,
        { prompt: 'a b c d e f g h', model_id: CHAT_MODEL },
        asAdmin,
      );
      expect(opened.status).toBe(200);
      const events = await opened.ended;
      const error = lastEventOf(events, 'error');
      expectToMatchSchemaAt(error, ERROR_RESPONSE, 'the error event');
      expect(error).toMatchObject({ error: 'upstream_timeout', details: 'no answer within 500 ms' });
      // Chunks at 0, 200 and 400 ms, cut at 500 ms: 'echo: a b' unless the machine is slow.
      const textSoFar = joinedDeltas(events);
      expect(textSoFar.length).toBeGreaterThan(0);
      expect(expectedReply('a b c d e f g h').text.startsWith(textSoFar)).toBe(true);
      expect(textSoFar).not.toBe(expectedReply('a b c d e f g h').text);

      const listed = await rest(gateway, 'GET', '/generations?status=failed', undefined, asAdmin);
      expect(listed.body.generations).toHaveLength(1);
      expect(listed.body.generations[0]).toMatchObject({ source: 'stream', status: 'failed', error: 'upstream_timeout', text: textSoFar });
      expect(generationCalls(fake)[0]!.closedEarlyAt).toEqual(expect.any(Number));
    } finally {
      await gateway.close();
    }
  });

  it('holds the provider concurrency slot until the stream ends: a second stream waits for the first', async () => {
    const gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: ADMIN_KEY, PROVIDER_CONCURRENCY: '1' } });
    try {
      fake.chunkDelayMs = 50;
      const url = `${gateway.url}/api/v1/generate/stream`;
      const first = await openStream(url, { prompt: 'the first stream takes a while', model_id: CHAT_MODEL }, asAdmin);
      expect(first.status).toBe(200);
      await first.eventCount(1);
      let secondOpenedAt: number | undefined;
      const secondOpening = openStream(url, { prompt: 'the second waits', model_id: CHAT_MODEL }, asAdmin).then((opened) => {
        secondOpenedAt = performance.now();
        return opened;
      });

      const firstEvents = await first.ended;
      expect(lastEventOf(firstEvents, 'done').text).toBe(expectedReply('the first stream takes a while').text);
      const second = await secondOpening;
      expect(second.status).toBe(200);
      expect(lastEventOf(await second.ended, 'done').text).toBe(expectedReply('the second waits').text);

      // The slot is given back only after the upstream's last chunk, which comes a chunk delay after the last delta.
      const firstLastDelta = firstEvents.filter((event) => event.event === 'delta').at(-1)!;
      expect(secondOpenedAt!).toBeGreaterThan(firstLastDelta.receivedAt);
      expect(fake.maxInFlight).toBe(1);
      expect(generationCalls(fake)).toHaveLength(2);
    } finally {
      await gateway.close();
    }
  });
});

describe('POST /api/v1/generate/stream heartbeat', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [CHAT_MODEL] });
    gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: ADMIN_KEY, STREAM_HEARTBEAT_MS: '250' } });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('sends a keep-alive comment between deltas when the upstream is slower than STREAM_HEARTBEAT_MS', async () => {
    fake.chunkDelayMs = 600;
    const opened = await openStream(`${gateway.url}/api/v1/generate/stream`, { prompt: 'slow words', model_id: CHAT_MODEL }, asAdmin);
    const events = await opened.ended;
    expect(lastEventOf(events, 'done').text).toBe('echo: slow words');
    expect(opened.comments.length).toBeGreaterThan(0);
    expect(opened.comments.every((comment) => comment.text === 'keep-alive')).toBe(true);
    // Every 600 ms gap between two deltas holds at least one comment.
    const order = opened.received.map((item) => ('event' in item ? item.event : 'comment'));
    const deltaPositions = order.flatMap((kind, index) => (kind === 'delta' ? [index] : []));
    for (let gap = 1; gap < deltaPositions.length; gap += 1) {
      expect(order.slice(deltaPositions[gap - 1]! + 1, deltaPositions[gap]!)).toContain('comment');
    }
  });

  it('sends no comment while writes come more often than STREAM_HEARTBEAT_MS', async () => {
    fake.chunkDelayMs = 10;
    // 10 ms apart against a 250 ms heartbeat: room for a loaded machine's pauses.
    const prompt = 'a b c d e f g h i j k l';
    const opened = await openStream(`${gateway.url}/api/v1/generate/stream`, { prompt, model_id: CHAT_MODEL }, asAdmin);
    const events = await opened.ended;
    expect(lastEventOf(events, 'done').text).toBe(expectedReply(prompt).text);
    expect(opened.comments).toEqual([]);
  });
});
