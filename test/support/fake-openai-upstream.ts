/**
 * A fake OpenAI-compatible upstream: a real `node:http` server on 127.0.0.1 that tests drive
 * through the real `openai` SDK (baseURL = `fake.url`, which already ends in `/v1`).
 *
 * Deterministic answers, so tests can compute expected figures (or call `expectedReply`):
 * - The prompt is, for /v1/completions, `prompt`; an array of prompts gets one choice per prompt
 *   (choice `index` i answers prompt i, usage is summed over them), as OpenAI and vLLM do;
 *   for /v1/chat/completions, the contents of all messages joined with a space (array contents:
 *   their text parts joined with a space; null contents are skipped).
 * - The reply is the word `echo:` followed by the prompt's whitespace-separated words, cut to
 *   `max_tokens` words (chat also reads `max_completion_tokens`; default 16). Cut: finish_reason
 *   'length', else 'stop'.
 * - usage.prompt_tokens = words in the prompt + 3; usage.completion_tokens = words in the reply;
 *   total_tokens = their sum.
 * - Every response carries `x-request-id: req_<n>` (n counts requests from 1 since start).
 * - `failPromptsContaining` is matched against the chat's LAST USER message (not the whole prompt).
 * - `stream: true` answers server-sent events as OpenAI does: the reply's words are the chunks
 *   ("echo:", " a", " b"), one every `chunkDelayMs`, then a chunk with the finish reason, then (with
 *   `stream_options.include_usage`, unless the behaviour is 'no-usage') a usage chunk, then
 *   `data: [DONE]`. Each chunk's send time and a client's early close are recorded on the request.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeUpstreamOptions {
  /** Ids listed by GET /v1/models. */
  models?: string[];
  /** When set, requests without `Authorization: Bearer <key>` get 401. */
  requiredApiKey?: string;
}

export type FakeBehaviour =
  | { kind: 'ok' }
  /** Answer with this status and an OpenAI-style error (or `body`: JSON, or sent verbatim if a string), and `headers` (Retry-After). */
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** Destroy the connection as soon as the request has arrived: the client sees a reset socket. */
  | { kind: 'reset' }
  /** Send the headers and the first bytes of the answer, then nothing more (a stall mid-body) until the client gives up. */
  | { kind: 'stall-body' }
  /** Streams only: send this many text chunks, then nothing more (the connection stays open). */
  | { kind: 'stall-after'; chunks: number }
  /** Never answer; the socket stays open until the client gives up or the fake closes. */
  | { kind: 'timeout' }
  /** 200, application/json, invalid JSON body. */
  | { kind: 'malformed' }
  /** A normal answer without `usage`. */
  | { kind: 'no-usage' }
  /** Streams only: send this many text chunks, then destroy the connection. */
  | { kind: 'cut-after'; chunks: number };

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. `/v1/chat/completions`. */
  path: string;
  headers: http.IncomingHttpHeaders;
  // `any` so tests can read request fields without narrowing; undefined when there was no JSON body.
  body: any;
  receivedAt: number;
  /** Streams: `performance.now()` when each text chunk was written. */
  chunksSentAt: number[];
  /** `performance.now()` when the client closed the connection before the answer ended. */
  closedEarlyAt?: number;
}

export interface FakeUpstream {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** The most generation requests (chat + completions) in flight at once since start/reset. */
  readonly maxInFlight: number;
  /** Delay before every generation answer. */
  latencyMs: number;
  /** While set, whole (non-streamed) answers wait for it to settle, after `latencyMs`: a gate the test opens. */
  holdAnswersUntil?: Promise<unknown>;
  /** Streams: delay between two chunks. */
  chunkDelayMs: number;
  /** Behaviours consumed in order, one per generation request; then `defaultBehaviour` applies. */
  queueBehaviours(...behaviours: FakeBehaviour[]): void;
  defaultBehaviour: FakeBehaviour;
  /** Generation requests whose prompt contains this substring fail with HTTP 500. */
  failPromptsContaining?: string;
  /** A reply of the test's own for a prompt (a judge's grade); the echo when it returns undefined. */
  answerFor?: (prompt: string) => string | undefined;
  /** Behaviour of GET /v1/models ('no-usage' acts as 'ok'). */
  modelsBehaviour: FakeBehaviour;
  /** Clears requests, maxInFlight, queue, latency and behaviours. */
  reset(): void;
  /** Closes the server and destroys open sockets, held 'timeout' ones included. */
  close(): Promise<void>;
}

export interface ExpectedReply {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
}

const DEFAULT_MODELS = ['gpt-4o-mini', 'ft:gpt-4o-mini:acme::abc123'];
const DEFAULT_MAX_TOKENS = 16;

const words = (text: string): string[] => text.split(/\s+/).filter((w) => w.length > 0);

/** What the fake answers for `prompt` (see the rules at the top of this file). */
export function expectedReply(prompt: string, maxTokens = DEFAULT_MAX_TOKENS): ExpectedReply {
  const full = ['echo:', ...words(prompt)];
  const kept = full.slice(0, Math.max(0, maxTokens));
  return {
    text: kept.join(' '),
    finishReason: kept.length < full.length ? 'length' : 'stop',
    promptTokens: words(prompt).length + 3,
    completionTokens: kept.length,
  };
}

/**
 * A `fetch` for `new OpenAI({ fetch: realmSafeFetch })` in jest. Jest runs tests in their own realm, so
 * the DOMException that Node's fetch throws on abort is not `instanceof Error` there; the SDK then drops
 * its name and reports a client timeout as plain APIConnectionError instead of APIConnectionTimeoutError.
 * Rethrowing as a same-realm Error with the same name restores the SDK's usual classification.
 */
export const realmSafeFetch: typeof fetch = async (input, init) => {
  try {
    return await fetch(input, init);
  } catch (err) {
    if (err instanceof Error) throw err;
    const { name, message } = err as { name?: string; message?: string };
    throw Object.assign(new Error(message ?? String(err), { cause: err }), { name: name ?? 'Error' });
  }
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Text of a chat message content: a string, or an array of parts whose text parts count. */
function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter((p): p is { text: string } => isObject(p) && typeof p.text === 'string')
      .map((p) => p.text)
      .join(' ');
  }
  return undefined;
}

function errorType(status: number): { type: string; code: string | null } {
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 404) return { type: 'invalid_request_error', code: 'not_found' };
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded' };
  if (status >= 500) return { type: 'server_error', code: null };
  return { type: 'invalid_request_error', code: null };
}

const errorBody = (status: number, message: string) => ({ error: { message, ...errorType(status), param: null } });

export function startFakeUpstream(options: FakeUpstreamOptions = {}, port = 0): Promise<FakeUpstream> {
  const models = options.models ?? DEFAULT_MODELS;
  const requests: RecordedRequest[] = [];
  const queue: FakeBehaviour[] = [];
  // Pending latency timers, cleared on close so jest sees no open handles.
  const timers = new Set<NodeJS.Timeout>();
  let counter = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    if (res.destroyed || res.writableEnded) return; // client already gone (e.g. it timed out during latency)
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { ...headers, 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
    res.end(raw);
  };
  const sendError = (res: http.ServerResponse, status: number, message: string): void => send(res, status, errorBody(status, message));

  /** Shared handling of the non-'ok' behaviours; returns true when it answered (or chose not to). */
  const applyFailure = (res: http.ServerResponse, behaviour: FakeBehaviour): boolean => {
    switch (behaviour.kind) {
      case 'status':
        send(
          res,
          behaviour.status,
          behaviour.body ?? errorBody(behaviour.status, `Fake upstream error (status ${behaviour.status})`),
          behaviour.headers,
        );
        return true;
      case 'timeout':
        return true; // hold the socket: no answer at all
      case 'reset':
        res.socket?.destroy();
        return true;
      case 'stall-body':
        if (!res.destroyed) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"id": "stalled", "object": ');
        }
        return true; // and never the rest
      case 'malformed':
        if (!res.destroyed) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"id": "broken", "choices": [');
        }
        return true;
      default:
        return false;
    }
  };

  const handleModels = (res: http.ServerResponse): void => {
    if (applyFailure(res, fake.modelsBehaviour)) return;
    const created = Math.floor(Date.now() / 1000);
    send(res, 200, {
      object: 'list',
      data: models.map((id) => ({ id, object: 'model', created, owned_by: 'fake-upstream' })),
    });
  };

  const handleGeneration = (res: http.ServerResponse, n: number, chat: boolean, record: RecordedRequest): void => {
    const body: unknown = record.body;
    if (!isObject(body)) return sendError(res, 400, 'The request body must be a JSON object.');
    if (typeof body.model !== 'string') return sendError(res, 400, 'You must provide a model parameter.');

    let prompts: string[];
    let failText: string;
    if (chat) {
      if (!Array.isArray(body.messages)) return sendError(res, 400, "'messages' must be an array.");
      const messages = body.messages.filter(isObject);
      const texts = messages.map((m) => contentText(m.content)).filter((t): t is string => t !== undefined);
      prompts = [texts.join(' ')];
      const lastUser = [...messages].reverse().find((m) => m.role === 'user');
      failText = (lastUser && contentText(lastUser.content)) ?? '';
    } else {
      if (typeof body.prompt === 'string') prompts = [body.prompt];
      else if (Array.isArray(body.prompt) && body.prompt.length > 0 && body.prompt.every((p) => typeof p === 'string'))
        prompts = body.prompt;
      else return sendError(res, 400, "'prompt' must be a string or a non-empty array of strings.");
      failText = prompts.join('\n');
    }
    const maxTokensField = chat ? (body.max_completion_tokens ?? body.max_tokens) : body.max_tokens;
    const maxTokens = typeof maxTokensField === 'number' ? maxTokensField : DEFAULT_MAX_TOKENS;
    const model = body.model;

    // Consume the behaviour on arrival so the queue follows request order, not latency order.
    let behaviour = queue.shift() ?? fake.defaultBehaviour;
    if (fake.failPromptsContaining !== undefined && failText.includes(fake.failPromptsContaining)) {
      behaviour = { kind: 'status', status: 500 };
    }

    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => {
      inFlight--; // also fires when a held 'timeout' socket is dropped
      if (!res.writableFinished) record.closedEarlyAt = performance.now();
    });

    const answer = (): void => {
      if (applyFailure(res, behaviour)) return;
      const replies = prompts.map((prompt): ExpectedReply => {
        const own = fake.answerFor?.(prompt);
        if (own === undefined) return expectedReply(prompt, maxTokens);
        return { text: own, finishReason: 'stop', promptTokens: words(prompt).length + 3, completionTokens: words(own).length };
      });
      const created = Math.floor(Date.now() / 1000);
      if (body.stream === true) {
        const includeUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
        return streamReply(res, record, { id: `${chat ? 'chatcmpl' : 'cmpl'}-fake${n}`, chat, model, created }, replies[0]!, {
          usage: includeUsage && behaviour.kind !== 'no-usage',
          cutAfter: behaviour.kind === 'cut-after' ? behaviour.chunks : undefined,
          stallAfter: behaviour.kind === 'stall-after' ? behaviour.chunks : undefined,
        });
      }
      const promptTokens = replies.reduce((sum, reply) => sum + reply.promptTokens, 0);
      const completionTokens = replies.reduce((sum, reply) => sum + reply.completionTokens, 0);
      const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
      const choices = replies.map((reply, index) =>
        chat
          ? { index, message: { role: 'assistant', content: reply.text, refusal: null }, logprobs: null, finish_reason: reply.finishReason }
          : { index, text: reply.text, finish_reason: reply.finishReason, logprobs: null },
      );
      send(res, 200, {
        id: `${chat ? 'chatcmpl' : 'cmpl'}-fake${n}`,
        object: chat ? 'chat.completion' : 'text_completion',
        created,
        model,
        choices,
        ...(behaviour.kind === 'no-usage' ? {} : { usage }),
      });
    };

    const gate = fake.holdAnswersUntil;
    const answerOnceOpen = (): void => {
      if (gate) void gate.then(answer, answer);
      else answer();
    };
    if (fake.latencyMs <= 0) return answerOnceOpen();
    const timer = setTimeout(() => {
      timers.delete(timer);
      answerOnceOpen();
    }, fake.latencyMs);
    timers.add(timer);
  };

  /** One reply as OpenAI streams it: a role chunk (chat), one chunk per word, the finish, the usage, [DONE]. */
  const streamReply = (
    res: http.ServerResponse,
    record: RecordedRequest,
    head: { id: string; chat: boolean; model: string; created: number },
    reply: ExpectedReply,
    options: { usage: boolean; cutAfter: number | undefined; stallAfter?: number },
  ): void => {
    if (res.destroyed) return;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const object = head.chat ? 'chat.completion.chunk' : 'text_completion';
    const event = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
      `data: ${JSON.stringify({ id: head.id, object, created: head.created, model: head.model, choices, ...extra })}\n\n`;
    const choice = (text: string | null, finishReason: string | null): unknown =>
      head.chat
        ? { index: 0, delta: text === null ? {} : { content: text }, logprobs: null, finish_reason: finishReason }
        : { index: 0, text: text ?? '', logprobs: null, finish_reason: finishReason };
    const pieces = reply.text.split(/(?= )/).filter((piece) => piece.length > 0);
    if (head.chat) res.write(event([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
    // Node holds a response's writes back until the next tick: destroying the connection in the same
    // tick would drop them unsent, so a cut waits until what came before it has left.
    if (options.cutAfter === 0) {
      res.flushHeaders();
      setImmediate(() => res.destroy());
      return;
    }
    let sent = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (options.stallAfter !== undefined && sent >= options.stallAfter) return; // hold the connection open, silent
      if (sent < pieces.length) {
        sent += 1;
        const cutNow = options.cutAfter !== undefined && sent >= options.cutAfter;
        res.write(event([choice(pieces[sent - 1]!, null)]), cutNow ? () => res.destroy() : undefined);
        record.chunksSentAt.push(performance.now());
        return cutNow ? undefined : schedule();
      }
      res.write(event([choice(null, reply.finishReason)]));
      if (options.usage) {
        const usage = { prompt_tokens: reply.promptTokens, completion_tokens: reply.completionTokens };
        res.write(event([], { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }));
      }
      res.end('data: [DONE]\n\n');
    };
    const schedule = (): void => {
      if (fake.chunkDelayMs <= 0) return next();
      const timer = setTimeout(() => {
        timers.delete(timer);
        next();
      }, fake.chunkDelayMs);
      timers.add(timer);
    };
    next();
  };

  const server = http.createServer((req, res) => {
    const n = ++counter;
    res.setHeader('x-request-id', `req_${n}`);
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path,
      headers: req.headers,
      body: undefined,
      receivedAt: Date.now(),
      chunksSentAt: [],
    };
    requests.push(record); // pushed now so `requests` keeps arrival order

    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (raw.length > 0) {
        try {
          record.body = JSON.parse(raw);
        } catch {
          return sendError(res, 400, 'We could not parse the JSON body of your request.');
        }
      }
      if (options.requiredApiKey !== undefined && req.headers.authorization !== `Bearer ${options.requiredApiKey}`) {
        return sendError(res, 401, 'Incorrect API key provided.');
      }
      const route = `${record.method} ${path}`;
      if (route === 'GET /v1/models') return handleModels(res);
      if (route === 'POST /v1/chat/completions') return handleGeneration(res, n, true, record);
      if (route === 'POST /v1/completions') return handleGeneration(res, n, false, record);
      return sendError(res, 404, `Invalid URL (${route})`);
    });
  });

  const fake: FakeUpstream = {
    url: '',
    port: 0,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    latencyMs: 0,
    chunkDelayMs: 0,
    queueBehaviours: (...behaviours) => {
      queue.push(...behaviours);
    },
    defaultBehaviour: { kind: 'ok' },
    failPromptsContaining: undefined,
    modelsBehaviour: { kind: 'ok' },
    reset() {
      requests.length = 0;
      queue.length = 0;
      maxInFlight = 0;
      fake.latencyMs = 0;
      fake.holdAnswersUntil = undefined;
      fake.chunkDelayMs = 0;
      fake.defaultBehaviour = { kind: 'ok' };
      fake.modelsBehaviour = { kind: 'ok' };
      fake.failPromptsContaining = undefined;
      fake.answerFor = undefined;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // keep-alive and held 'timeout' sockets would otherwise keep it open
      }),
  };

  return new Promise<FakeUpstream>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const actualPort = (server.address() as AddressInfo).port;
      resolve(Object.assign(fake, { port: actualPort, url: `http://127.0.0.1:${actualPort}/v1` }));
    });
  });
}
