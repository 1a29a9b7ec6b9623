import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { expectedReply, realmSafeFetch, startFakeUpstream, type FakeUpstream } from './fake-openai-upstream';
import { poll } from './polling';

describe('fake OpenAI upstream', () => {
  let fake: FakeUpstream;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    client = new OpenAI({ apiKey: 'test', baseURL: fake.url, maxRetries: 0, timeout: 500 });
  });
  afterEach(() => fake.reset());
  afterAll(() => fake.close());

  it('answers a chat completion with the echoed prompt, usage and finish reason', async () => {
    const res = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hello there world' }],
    });
    expect(res.choices[0]?.message.content).toBe('echo: hello there world');
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(res.model).toBe('gpt-4o-mini');
    expect(res.usage).toMatchObject({ prompt_tokens: 6, completion_tokens: 4, total_tokens: 10 });
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/v1/chat/completions' });
    expect(fake.requests[0]?.body.messages[0].content).toBe('hello there world');
  });

  it('cuts the reply at max_tokens words and reports finish reason length', async () => {
    const res = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'one two three four' }],
      max_tokens: 3,
    });
    expect(res.choices[0]?.message.content).toBe('echo: one two');
    expect(res.choices[0]?.finish_reason).toBe('length');
    expect(expectedReply('one two three four', 3)).toEqual({
      text: 'echo: one two',
      finishReason: 'length',
      promptTokens: 7,
      completionTokens: 3,
    });
  });

  it('answers the legacy completions endpoint', async () => {
    const res = await client.completions.create({ model: 'gpt-4o-mini', prompt: 'say something' });
    const expected = expectedReply('say something');
    expect(res.object).toBe('text_completion');
    expect(res.choices[0]?.text).toBe(expected.text);
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(res.usage?.prompt_tokens).toBe(expected.promptTokens);
    expect(res.usage?.completion_tokens).toBe(expected.completionTokens);
  });

  it('omits usage when the behaviour is no-usage', async () => {
    fake.queueBehaviours({ kind: 'no-usage' });
    const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.choices[0]?.message.content).toBe('echo: hi');
    expect(res.usage).toBeUndefined();
  });

  it('turns a queued 500 into an APIError with status 500, then answers normally', async () => {
    fake.queueBehaviours({ kind: 'status', status: 500 });
    const call = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const err = await call().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(500);
    await expect(call()).resolves.toBeDefined();
  });

  it('fails prompts containing the configured substring with status 500', async () => {
    fake.failPromptsContaining = 'poison';
    await expect(client.completions.create({ model: 'gpt-4o-mini', prompt: 'a poison pill' })).rejects.toMatchObject({ status: 500 });
  });

  it('makes the SDK time out when the behaviour is timeout', async () => {
    fake.queueBehaviours({ kind: 'timeout' });
    const timing = new OpenAI({ apiKey: 'test', baseURL: fake.url, maxRetries: 0, timeout: 500, fetch: realmSafeFetch });
    await expect(
      timing.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(APIConnectionTimeoutError);
  });

  it('still fails a held request as a connection error when the client uses the default fetch under jest', async () => {
    // Without realmSafeFetch jest's separate realm hides the abort's name, so the SDK reports only the parent class.
    fake.queueBehaviours({ kind: 'timeout' });
    const started = Date.now();
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(APIConnectionError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('makes the SDK throw on a malformed JSON body', async () => {
    fake.queueBehaviours({ kind: 'malformed' });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).rejects.toThrow();
  });

  it('lists the configured models', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['gpt-4o-mini', 'ft:gpt-4o-mini:acme::abc123']);
  });

  it('answers unknown paths with 404', async () => {
    await expect(client.get('/nowhere')).rejects.toMatchObject({ status: 404 });
  });

  it('answers a body that is not JSON with 400', async () => {
    const res = await fetch(`${fake.url}/chat/completions`, { method: 'POST', body: 'not json' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
  });

  it('counts the most generation requests in flight at once', async () => {
    fake.latencyMs = 100;
    await Promise.all([1, 2, 3].map((i) => client.completions.create({ model: 'gpt-4o-mini', prompt: `parallel ${i}` })));
    expect(fake.maxInFlight).toBe(3);
  });
});

describe('fake OpenAI upstream streaming', () => {
  let fake: FakeUpstream;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    client = new OpenAI({ apiKey: 'test', baseURL: fake.url, maxRetries: 0, timeout: 2000 });
  });
  afterEach(() => fake.reset());
  afterAll(() => fake.close());

  const streamChat = (content: string, extra: { max_tokens?: number; include_usage?: boolean } = {}) =>
    client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content }],
      stream: true,
      ...(extra.max_tokens === undefined ? {} : { max_tokens: extra.max_tokens }),
      ...(extra.include_usage ? { stream_options: { include_usage: true } } : {}),
    });

  it('streams a chat reply one word per chunk, then the finish reason, the usage when asked, and [DONE]', async () => {
    const chunks = [];
    for await (const chunk of await streamChat('stream me please', { include_usage: true })) chunks.push(chunk);
    const texts = chunks.map((chunk) => chunk.choices[0]?.delta.content).filter((text) => text);
    expect(texts).toEqual(['echo:', ' stream', ' me', ' please']);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(chunks.map((chunk) => chunk.choices[0]?.finish_reason).filter(Boolean)).toEqual(['stop']);
    expect(chunks.at(-1)).toMatchObject({
      object: 'chat.completion.chunk',
      choices: [],
      usage: { prompt_tokens: 6, completion_tokens: 4, total_tokens: 10 },
    });
    expect(fake.requests[0]?.chunksSentAt).toHaveLength(4);
    expect(fake.requests[0]?.closedEarlyAt).toBeUndefined();
  });

  it('streams a completion cut at max_tokens with finish reason length, and no usage unless asked', async () => {
    const stream = await client.completions.create({ model: 'gpt-4o-mini', prompt: 'one two three four', max_tokens: 2, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.choices[0]?.text ?? '').join('')).toBe(expectedReply('one two three four', 2).text);
    expect(chunks.map((chunk) => chunk.choices[0]?.finish_reason).filter(Boolean)).toEqual(['length']);
    expect(chunks.some((chunk) => chunk.usage)).toBe(false);
  });

  it('leaves the usage chunk out for the no-usage behaviour, even when asked', async () => {
    fake.queueBehaviours({ kind: 'no-usage' });
    const chunks = [];
    for await (const chunk of await streamChat('no usage', { include_usage: true })) chunks.push(chunk);
    expect(chunks.some((chunk) => chunk.usage)).toBe(false);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('echo: no usage');
  });

  it('spaces chunks chunkDelayMs apart and records when each was sent', async () => {
    fake.chunkDelayMs = 50;
    for await (const _chunk of await streamChat('a b c')) {
      // read to the end
    }
    const sentAt = fake.requests[0]!.chunksSentAt;
    expect(sentAt).toHaveLength(4);
    for (let index = 1; index < sentAt.length; index += 1) expect(sentAt[index]! - sentAt[index - 1]!).toBeGreaterThanOrEqual(45);
  });

  it.each([0, 2])(
    'delivers exactly %i text chunks before cutting the connection for cut-after, with no delay between chunks',
    async (chunks) => {
      fake.queueBehaviours({ kind: 'cut-after', chunks });
      const texts: string[] = [];
      const reading = (async () => {
        for await (const chunk of await streamChat('cut this stream short')) {
          const text = chunk.choices[0]?.delta.content;
          if (text) texts.push(text);
        }
      })();
      await expect(reading).rejects.toThrow();
      expect(texts).toEqual(['echo:', ' cut', ' this'].slice(0, chunks));
      expect(fake.requests[0]?.chunksSentAt).toHaveLength(chunks);
    },
  );

  it('records when a client closes the stream before its end', async () => {
    fake.chunkDelayMs = 100;
    let abortedAt = 0;
    for await (const chunk of await streamChat('a long reply to abandon')) {
      if (chunk.choices[0]?.delta.content) {
        // Leaving the loop makes the SDK abort its request.
        abortedAt = performance.now();
        break;
      }
    }
    const record = fake.requests[0]!;
    const closedEarlyAt = await poll(
      async () => record.closedEarlyAt,
      (at) => at !== undefined,
    );
    expect(closedEarlyAt! - abortedAt).toBeLessThan(100);
    expect(record.chunksSentAt).toHaveLength(1);
  });
});

describe('fake OpenAI upstream with a required API key', () => {
  let fake: FakeUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream({ requiredApiKey: 'sk-right', models: ['only-model'] });
  });
  afterAll(() => fake.close());

  it('rejects a wrong key with 401 and accepts the right one', async () => {
    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: fake.url, maxRetries: 0, timeout: 500 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401 });

    const right = new OpenAI({ apiKey: 'sk-right', baseURL: fake.url, maxRetries: 0, timeout: 500 });
    const page = await right.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['only-model']);
  });
});
