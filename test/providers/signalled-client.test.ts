/**
 * The `openai` client the SDK providers use (src/providers/openai-sdk/signalled-client.ts): a call that
 * brings a signal reaches `fetch` with that very signal (no SDK timer, listener or signal of its own); one
 * without keeps the SDK's own timeout. And a stream aborted mid-answer ends in the SDK's
 * APIUserAbortError whatever the signal's reason, as it did when `fetch` got the SDK's signal.
 */
import OpenAI from 'openai';
import { mapSdkError } from '../../src/providers/openai-sdk/map-sdk-error';
import { SignalledOpenAI } from '../../src/providers/openai-sdk/signalled-client';
import { streamWithOpenAISdk } from '../../src/providers/openai-sdk/stream-text';
import type { GenerationRequest, ModelDescriptor } from '../../src/providers/provider';

interface SeenCall {
  readonly url: string;
  readonly init: RequestInit;
}

const completion = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
};

/** The part of a Response the SDK reads. */
function responseOf(body: AsyncIterable<Uint8Array> | string, contentType: string): Response {
  const headers = new Headers({ 'content-type': contentType, 'x-request-id': 'req-1' });
  const text = async (): Promise<string> => (typeof body === 'string' ? body : '');
  return {
    status: 200,
    ok: true,
    statusText: '',
    url: '',
    headers,
    body: typeof body === 'string' ? null : body,
    json: async () => JSON.parse(await text()),
    text,
  } as unknown as Response;
}

function clientWith(fetch: (url: string, init: RequestInit) => Promise<Response>, timeout = 60_000): SignalledOpenAI {
  return new SignalledOpenAI({ apiKey: 'test-key', baseURL: 'http://upstream.invalid/v1', maxRetries: 0, timeout, fetch: fetch as never });
}

describe('SignalledOpenAI', () => {
  it("hands the caller's own signal to fetch, with the method upper-cased and the body and headers as the SDK built them", async () => {
    const seen: SeenCall[] = [];
    const client = clientWith(async (url, init) => {
      seen.push({ url, init });
      return responseOf(JSON.stringify(completion), 'application/json');
    });
    const { signal } = new AbortController();
    const answer = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hello' }] }, { signal });
    expect(answer.choices[0]?.message.content).toBe('hi');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.init.signal).toBe(signal);
    expect(seen[0]!.init.method).toBe('POST');
    expect(JSON.parse(String(seen[0]!.init.body))).toMatchObject({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
    expect(new Headers(seen[0]!.init.headers as HeadersInit).get('authorization')).toBe('Bearer test-key');
  });

  it("keeps the SDK's own timeout for a call without a signal", async () => {
    const seen: SeenCall[] = [];
    const client = clientWith((url, init) => {
      seen.push({ url, init });
      // Answers only when aborted, as a stuck upstream would.
      return new Promise((_resolve, reject) =>
        init.signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))),
      );
    }, 50);
    await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(seen[0]!.init.signal).toBeInstanceOf(AbortSignal);
  });

  it('ends a stream aborted mid-answer in APIUserAbortError (a cancellation), whatever the reason the body failed with', async () => {
    const encoder = new TextEncoder();
    const controller = new AbortController();
    const client = clientWith(async (_url, init) => {
      async function* body(): AsyncGenerator<Uint8Array> {
        yield encoder.encode(
          'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"one"},"finish_reason":null}]}\n\n',
        );
        // As undici fails a body whose signal aborts: with the signal's own reason.
        if (!init.signal?.aborted) await new Promise((resolve) => init.signal?.addEventListener('abort', resolve));
        throw init.signal?.reason;
      }
      return responseOf(body(), 'text/event-stream');
    });
    const model = { id: 'm', upstreamModel: 'm', api: 'chat' } as unknown as ModelDescriptor;
    const request = { model, prompt: 'hello', maxTokens: 8, temperature: 1, topP: 1, signal: controller.signal } as GenerationRequest;
    const { chunks } = await streamWithOpenAISdk(client, request, 'max_tokens');
    const texts: string[] = [];
    let failure: unknown;
    try {
      for await (const part of chunks) {
        if (part.type === 'text') texts.push(part.text);
        controller.abort(new DOMException('no answer within 10 ms', 'TimeoutError'));
      }
    } catch (error) {
      failure = error;
    }
    expect(texts).toEqual(['one']);
    expect(failure).toBeInstanceOf(OpenAI.APIUserAbortError);
    expect(mapSdkError(failure, 'upstream', 60_000).kind).toBe('timeout');
  });
});
