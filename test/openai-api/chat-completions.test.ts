/**
 * POST /v1/chat/completions as the official `openai` SDK uses it (issue 15), against the real gateway
 * and the fake OpenAI-compatible upstream: answers whole and streamed (the deltas joined are the
 * text), conversations that reach a chat upstream as messages and a completion model as their
 * transcript, the parameters forwarded, the ledger row (source `openai`, cost), the shared `generate`
 * rate limit, budgets, OpenAI's error shapes and SDK error classes, and a client that walks away.
 */
import OpenAI, { type APIError, type BadRequestError, type RateLimitError } from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { expectedReply, type FakeUpstream, realmSafeFetch, startFakeUpstream } from '../support/fake-openai-upstream';
import { type FileKey, generationCalls, type LedgerGeneration, writeKeysFile } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { type RunningGateway, startGateway } from '../support/start-gateway';

const CHAT_MODEL = 'tiny-chat';
const COMPLETION_MODEL = 'tiny-completion';
const PRICE = { input_per_million: 3, output_per_million: 15 };

const unlimited = { generate: 100_000, generate_batch: 100_000, other: 100_000 };
const KEYS = {
  admin: { name: 'admin', key: 'openai-admin-key-0123456789', role: 'admin', limits: unlimited },
  /** Left to RATE_LIMIT_GENERATE (2 per window). */
  limited: { name: 'limited', key: 'openai-limited-key-0123456789', role: 'member', limits: { other: 100_000 } },
  /** A zero budget applies to this key. */
  broke: { name: 'broke', key: 'openai-broke-key-0123456789', role: 'member', limits: unlimited },
} as const satisfies Record<string, FileKey>;

let fake: FakeUpstream;
let gateway: RunningGateway;
let client: OpenAI;

const sdkFor = (apiKey: string): OpenAI => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0, fetch: realmSafeFetch });

/** A raw POST, for what the SDK would not send or would hide. */
const post = (path: string, body: string, key: string = KEYS.admin.key) =>
  fetch(`${gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });

async function ledgerRow(generationId: string): Promise<LedgerGeneration> {
  const response = await fetch(`${gateway.url}/api/v1/generations/${generationId}`, {
    headers: { authorization: `Bearer ${KEYS.admin.key}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as LedgerGeneration;
}

/** The ledger row's id inside a `chatcmpl-` id. */
const generationIdOf = (completionId: string): string => {
  expect(completionId).toMatch(/^chatcmpl-gen_[0-9a-z]+$/);
  return completionId.slice('chatcmpl-'.length);
};

const costOf = (promptTokens: number, completionTokens: number): number =>
  (promptTokens * PRICE.input_per_million + completionTokens * PRICE.output_per_million) / 1_000_000;

/** Every chunk of a streamed answer. */
async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const joinedDeltas = (chunks: readonly ChatCompletionChunk[]): string =>
  chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');

/** What a call throws, to assert on. */
const caught = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );

beforeAll(async () => {
  fake = await startFakeUpstream({ models: [CHAT_MODEL, COMPLETION_MODEL] });
  gateway = await startGateway({
    env: { API_KEYS_FILE: writeKeysFile(Object.values(KEYS)), RATE_LIMIT_GENERATE: '2' },
    catalog: {
      endpoints: [{ name: 'vllm', base_url: fake.url }],
      models: [
        { id: CHAT_MODEL, provider: 'vllm', api: 'chat', context_length: 4096, pricing: PRICE },
        { id: COMPLETION_MODEL, provider: 'vllm', api: 'completion', context_length: 4096, pricing: PRICE },
      ],
    },
  });
  client = sdkFor(KEYS.admin.key);
  // A zero budget on the broke key only.
  const budget = await fetch(`${gateway.url}/api/v1/budgets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.admin.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ scope: 'key', subject: KEYS.broke.name, limit_usd: 0, period: 'month' }),
  });
  expect(budget.status).toBe(201);
});

afterAll(async () => {
  await gateway?.close();
  await fake?.close();
});

beforeEach(() => fake.reset());

const conversation: ChatCompletionCreateParamsNonStreaming['messages'] = [
  { role: 'system', content: 'Answer briefly' },
  { role: 'user', content: 'Name three primary colours' },
];
const conversationPrompt = 'Answer briefly Name three primary colours';

describe('answers', () => {
  it('answers a chat.completion with the text, finish reason, usage and a ledger id', async () => {
    const { data: completion, response } = await client.chat.completions
      .create({ model: CHAT_MODEL, messages: conversation, max_tokens: 3 })
      .withResponse();
    const reply = expectedReply(conversationPrompt, 3);
    expect(completion).toEqual({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      created: expect.any(Number),
      model: CHAT_MODEL,
      choices: [{ index: 0, message: { role: 'assistant', content: reply.text, refusal: null }, logprobs: null, finish_reason: 'length' }],
      usage: {
        prompt_tokens: reply.promptTokens,
        completion_tokens: reply.completionTokens,
        total_tokens: reply.promptTokens + reply.completionTokens,
      },
    });
    expect(Math.abs(completion.created - Date.now() / 1000)).toBeLessThan(60);
    expect(response.headers.get('x-request-id')).toEqual(expect.any(String));
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);

    const row = await ledgerRow(generationIdOf(completion.id));
    expect(row).toMatchObject({
      source: 'openai',
      status: 'succeeded',
      caller: KEYS.admin.name,
      model_id: CHAT_MODEL,
      text: reply.text,
      request_id: response.headers.get('x-request-id'),
    });
    expect(row.cost_usd).toBeCloseTo(costOf(reply.promptTokens, reply.completionTokens), 12);
  });

  it('answers finish_reason stop when the answer ends by itself', async () => {
    const completion = await client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]).toMatchObject({ message: { content: 'echo: hi' }, finish_reason: 'stop' });
  });

  it('streams chat.completion.chunk events whose deltas join into the non-streamed text', async () => {
    const whole = await client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, max_tokens: 6 });
    const chunks = await collect(
      await client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, max_tokens: 6, stream: true }),
    );

    const reply = expectedReply(conversationPrompt, 6);
    expect(joinedDeltas(chunks)).toBe(reply.text);
    expect(joinedDeltas(chunks)).toBe(whole.choices[0]!.message.content);
    const [first, ...rest] = chunks;
    expect(first).toEqual({
      id: expect.stringMatching(/^chatcmpl-gen_/),
      object: 'chat.completion.chunk',
      created: expect.any(Number),
      model: CHAT_MODEL,
      choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }],
    });
    // One content chunk per upstream chunk, then the finish; no usage unless asked for.
    const contents = rest.slice(0, -1);
    expect(contents.map((chunk) => chunk.choices[0]!.delta.content)).toEqual(reply.text.split(/(?= )/));
    for (const chunk of contents) expect(chunk.choices[0]!.finish_reason).toBeNull();
    expect(rest.at(-1)!.choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }]);
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({ id: first!.id, created: first!.created, model: CHAT_MODEL });
      expect(chunk).not.toHaveProperty('usage');
    }
    // The upstream was asked to stream.
    expect(generationCalls(fake).at(-1)!.body).toMatchObject({ stream: true });

    const row = await ledgerRow(generationIdOf(first!.id));
    expect(row).toMatchObject({ source: 'openai', status: 'succeeded', text: reply.text });
    expect(row.cost_usd).toBeCloseTo(costOf(reply.promptTokens, reply.completionTokens), 12);
  });

  it('ends a stream with a usage chunk without choices when stream_options.include_usage is set, then [DONE]', async () => {
    const response = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: CHAT_MODEL, messages: conversation, max_tokens: 4, stream: true, stream_options: { include_usage: true } }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    const events = (await response.text()).split('\n\n').filter((event) => event.length > 0);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((event) => {
      expect(event.startsWith('data: ')).toBe(true);
      return JSON.parse(event.slice('data: '.length)) as ChatCompletionChunk;
    });
    const reply = expectedReply(conversationPrompt, 4);
    expect(chunks.at(-1)).toEqual({
      id: chunks[0]!.id,
      object: 'chat.completion.chunk',
      created: chunks[0]!.created,
      model: CHAT_MODEL,
      choices: [],
      usage: {
        prompt_tokens: reply.promptTokens,
        completion_tokens: reply.completionTokens,
        total_tokens: reply.promptTokens + reply.completionTokens,
      },
    });
    // As OpenAI sends them: `usage: null` on every other chunk.
    for (const chunk of chunks.slice(0, -1)) expect(chunk.usage).toBeNull();
    expect(joinedDeltas(chunks)).toBe(reply.text);
  });

  it('gives the SDK the usage chunk too', async () => {
    const chunks = await collect(
      await client.chat.completions.create({
        model: CHAT_MODEL,
        messages: conversation,
        max_completion_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    const reply = expectedReply(conversationPrompt, 4);
    expect(chunks.at(-1)!.usage).toEqual({
      prompt_tokens: reply.promptTokens,
      completion_tokens: reply.completionTokens,
      total_tokens: reply.promptTokens + reply.completionTokens,
    });
  });
});

describe('requests', () => {
  it('sends a conversation to a chat upstream as its messages, roles kept', async () => {
    await client.chat.completions.create({
      model: CHAT_MODEL,
      messages: [
        { role: 'developer', content: 'Be terse' },
        { role: 'user', content: 'What is red?' },
        { role: 'assistant', content: 'A colour.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'And blue?' },
            { type: 'text', text: 'Briefly.' },
          ],
        },
      ],
    });
    const [call] = generationCalls(fake);
    expect(call!.path).toBe('/v1/chat/completions');
    // `developer` is the newer name of `system`; text parts are joined with newlines.
    expect(call!.body.messages).toEqual([
      { role: 'system', content: 'Be terse' },
      { role: 'user', content: 'What is red?' },
      { role: 'assistant', content: 'A colour.' },
      { role: 'user', content: 'And blue?\nBriefly.' },
    ]);
  });

  it('sends a completion model the conversation as its transcript, and records the transcript as the prompt', async () => {
    const completion = await client.chat.completions.create({ model: COMPLETION_MODEL, messages: conversation });
    const [call] = generationCalls(fake);
    expect(call!.path).toBe('/v1/completions');
    const transcript = 'system: Answer briefly\n\nuser: Name three primary colours';
    expect(call!.body.prompt).toBe(transcript);
    expect(completion.choices[0]!.message.content).toBe(expectedReply(transcript).text);
    expect((await ledgerRow(generationIdOf(completion.id))).prompt).toBe(transcript);
  });

  it('honours max_completion_tokens as max_tokens', async () => {
    const completion = await client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, max_completion_tokens: 2 });
    expect(completion.choices[0]).toMatchObject({
      message: { content: expectedReply(conversationPrompt, 2).text },
      finish_reason: 'length',
    });
    expect(completion.usage!.completion_tokens).toBe(2);
    expect((await ledgerRow(generationIdOf(completion.id))).parameters.max_tokens).toBe(2);
  });

  it('forwards temperature, top_p, stop and seed upstream', async () => {
    await client.chat.completions.create({
      model: CHAT_MODEL,
      messages: conversation,
      temperature: 0.2,
      top_p: 0.5,
      stop: ['END', '###'],
      seed: 42,
    });
    await client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, stop: 'STOP', stream: true }).then(collect);
    const [whole, streamed] = generationCalls(fake);
    expect(whole!.body).toMatchObject({ temperature: 0.2, top_p: 0.5, stop: ['END', '###'], seed: 42 });
    expect(streamed!.body).toMatchObject({ stop: ['STOP'] });
  });

  it('accepts the harmless extras OpenAI clients send (user, metadata, store, n = 1, zero penalties)', async () => {
    const completion = await client.chat.completions.create({
      model: CHAT_MODEL,
      messages: conversation,
      user: 'end-user-7',
      metadata: { purpose: 'test' },
      store: false,
      n: 1,
      frequency_penalty: 0,
      presence_penalty: 0,
      response_format: { type: 'text' },
      tools: [],
      parallel_tool_calls: false,
    });
    expect(completion.choices[0]!.message.content).toBe(expectedReply(conversationPrompt).text);
  });
});

describe('refusals in OpenAI shape', () => {
  /** A request the SDK sends as given; the 400 it gets back, as the SDK raises it. */
  async function badRequest(body: Record<string, unknown>): Promise<BadRequestError> {
    const error = await caught(client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, ...body } as never));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error' });
    return error as BadRequestError;
  }

  it.each<[string, Record<string, unknown>, string]>([
    [
      'a tool message',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'tool', content: 'x', tool_call_id: 'c1' },
        ],
      },
      'messages[1].role',
    ],
    ['an unknown role', { messages: [{ role: 'robot', content: 'hi' }] }, 'messages[0].role'],
    [
      'an image part',
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'see' },
              { type: 'image_url', image_url: { url: 'http://x/y.png' } },
            ],
          },
        ],
      },
      'messages[0].content[1].type',
    ],
    [
      'an assistant message with tool calls',
      { messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c1' }] }] },
      'messages[0].tool_calls',
    ],
    ['a message without content', { messages: [{ role: 'user' }] }, 'messages[0].content'],
    ['n other than 1', { n: 2 }, 'n'],
    ['tools', { tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }, 'tools'],
    ['JSON mode', { response_format: { type: 'json_object' } }, 'response_format'],
    ['logprobs', { logprobs: true }, 'logprobs'],
    ['an unknown field', { frobnicate: true }, 'frobnicate'],
    ['a temperature out of bounds', { temperature: 3 }, 'temperature'],
    ['max_completion_tokens out of bounds', { max_completion_tokens: 100_000 }, 'max_completion_tokens'],
    ['max_tokens of the wrong type', { max_tokens: 'many' }, 'max_tokens'],
    ['five stop sequences', { stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    ['stream_options without stream', { stream_options: { include_usage: true } }, 'stream_options'],
    ['a fractional seed', { seed: 1.5 }, 'seed'],
    ['no messages', { messages: [] }, 'messages'],
  ])('refuses %s with 400 naming the field', async (_what, body, param) => {
    const error = await badRequest(body);
    expect(error.param).toBe(param);
    expect(error.code).toBe('validation_error');
    expect(error.message.length).toBeGreaterThan(0);
    expect(generationCalls(fake)).toEqual([]);
  });

  it('says which field and why, as OpenAI words it', async () => {
    expect((await badRequest({ frobnicate: true })).message).toBe('400 Unrecognized request argument supplied: frobnicate');
    expect((await badRequest({ temperature: 3 })).message).toContain('temperature must be between 0 and 2, got 3');
  });

  it('refuses a body that is not JSON with 400, and one past MAX_BODY_BYTES with 413', async () => {
    const invalid = await post('/v1/chat/completions', '{"model": ');
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({
      error: { message: expect.stringContaining('JSON'), type: 'invalid_request_error', param: null, code: 'validation_error' },
    });
    const huge = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] }),
    );
    expect(huge.status).toBe(413);
    expect(await huge.json()).toEqual({
      error: { message: expect.stringContaining('too large'), type: 'invalid_request_error', param: null, code: 'payload_too_large' },
    });
  });

  it('returns 404 model_not_found (NotFoundError) for an unknown model, streamed or not', async () => {
    for (const stream of [false, true]) {
      const error = await caught(client.chat.completions.create({ model: 'no-such-model', messages: conversation, stream }));
      expect(error).toBeInstanceOf(OpenAI.NotFoundError);
      expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model', type: 'invalid_request_error' });
    }
  });

  it('returns 401 (AuthenticationError) for a bad key, without echoing it', async () => {
    const error = await caught(sdkFor('sk-wrong-secret-0123').chat.completions.create({ model: CHAT_MODEL, messages: conversation }));
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'authentication_error' });
    expect((error as APIError).message).not.toContain('sk-wrong-secret-0123');
    expect(generationCalls(fake)).toEqual([]);
  });

  it('returns 402 budget_exceeded (an APIError with status 402) when a budget has no room, streamed or not', async () => {
    const broke = sdkFor(KEYS.broke.key);
    for (const stream of [false, true]) {
      const error = await caught(broke.chat.completions.create({ model: CHAT_MODEL, messages: conversation, stream }));
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect(error).toMatchObject({ status: 402, code: 'budget_exceeded', type: 'insufficient_quota', param: null });
    }
    expect(generationCalls(fake)).toEqual([]);
  });

  it('answers an upstream that fails before streaming with an ordinary JSON error (InternalServerError)', async () => {
    fake.queueBehaviours({ kind: 'status', status: 500 });
    const error = await caught(client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, stream: true }));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error).toMatchObject({ type: 'server_error' });
    expect((error as APIError).status).toBeGreaterThanOrEqual(500);
    expect(JSON.stringify((error as APIError).error)).not.toMatch(/at .*\.ts:\d+/);
  });
});

describe('the generate rate limit', () => {
  it('counts /v1 calls together with POST /api/v1/generate, and refuses with 429 rate_limit_exceeded and Retry-After', async () => {
    const limited = sdkFor(KEYS.limited.key);
    const { response: first } = await limited.chat.completions.create({ model: CHAT_MODEL, messages: conversation }).withResponse();
    expect(first.headers.get('x-ratelimit-limit')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');

    const rest = await post('/api/v1/generate', JSON.stringify({ prompt: 'count me', model_id: CHAT_MODEL }), KEYS.limited.key);
    expect(rest.status).toBe(200);
    expect(rest.headers.get('x-ratelimit-remaining')).toBe('0');

    for (const stream of [false, true]) {
      const error = await caught(limited.chat.completions.create({ model: CHAT_MODEL, messages: conversation, stream }));
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      const refused = error as RateLimitError;
      expect(refused).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'requests' });
      expect(Number(refused.headers!.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers!.get('x-ratelimit-remaining')).toBe('0');
    }
    expect(generationCalls(fake)).toHaveLength(2);
  });
});

describe('streams that end early', () => {
  it('sends an error event and no [DONE] when the upstream fails mid-stream, and records the row failed', async () => {
    fake.queueBehaviours({ kind: 'cut-after', chunks: 2 });
    const response = await post('/v1/chat/completions', JSON.stringify({ model: CHAT_MODEL, messages: conversation, stream: true }));
    expect(response.status).toBe(200);
    const events = (await response.text()).split('\n\n').filter((event) => event.length > 0);
    expect(events).not.toContain('data: [DONE]');
    const last = JSON.parse(events.at(-1)!.slice('data: '.length)) as { error: Record<string, unknown> };
    expect(last.error).toEqual({ message: expect.any(String), type: 'server_error', param: null, code: expect.any(String) });
    const first = JSON.parse(events[0]!.slice('data: '.length)) as ChatCompletionChunk;
    const row = await ledgerRow(generationIdOf(first.id));
    expect(row).toMatchObject({ source: 'openai', status: 'failed', text: 'echo: Answer' });
  });

  it('raises the mid-stream error in the SDK after the text so far', async () => {
    fake.queueBehaviours({ kind: 'cut-after', chunks: 1 });
    const received: ChatCompletionChunk[] = [];
    const error = await caught(
      (async () => {
        for await (const chunk of await client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, stream: true }))
          received.push(chunk);
      })(),
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).toMatchObject({ type: 'server_error' });
    expect(joinedDeltas(received)).toBe('echo:');
  });

  it('stops the upstream call within 100 ms when the client aborts, and records the row cancelled with the text so far', async () => {
    // A stream cut short is metered with the tokenizer, whose first load blocks this process (gateway and fake
    // alike) for about half a second: loaded first, by a stream whose upstream reports no usage.
    fake.queueBehaviours({ kind: 'no-usage' });
    await client.chat.completions.create({ model: CHAT_MODEL, messages: conversation, stream: true }).then(collect);
    fake.chunkDelayMs = 100;
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: CHAT_MODEL, messages: conversation, stream: true },
      { signal: controller.signal },
    );
    let id = '';
    let text = '';
    let abortedAt: number | undefined;
    for await (const chunk of stream) {
      id = chunk.id;
      text += chunk.choices[0]?.delta.content ?? '';
      if (abortedAt === undefined && text === 'echo: Answer') {
        abortedAt = performance.now();
        controller.abort();
      }
    }
    expect(text).toBe('echo: Answer');
    const call = await poll(
      async () => generationCalls(fake).at(-1)!,
      (last) => last.closedEarlyAt !== undefined,
      2000,
    );
    expect(call.closedEarlyAt! - abortedAt!).toBeLessThan(100);
    expect(call.chunksSentAt).toHaveLength(2);
    const row = await poll(
      () => ledgerRow(generationIdOf(id)),
      (found) => found.status === 'cancelled',
      5000,
    );
    expect(row).toMatchObject({ source: 'openai', status: 'cancelled', text: 'echo: Answer' });
    expect(row.metrics.output_tokens).toBeGreaterThan(0);
    expect(row.cost_usd).toBeGreaterThan(0);
  });
});
