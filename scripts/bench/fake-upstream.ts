/**
 * The bench's upstream: a lean OpenAI-compatible server in its own process, so that the gateway's
 * cost is what the bench measures. Every answer is a fixed, pre-serialised body; the request body is
 * read and only searched for `"stream":true` and `"include_usage":true`, never parsed. Prints
 * `{"port":N}` on stdout once it listens. With `--delay-ms N` every JSON answer leaves N ms after its
 * request has arrived (a timer, no CPU spent waiting): the bench's evaluation phase uses one such
 * upstream so that its cells take as long as a (fast) real model would.
 *
 * A chat completion asked with `stream: true` is streamed as OpenAI streams it: the status line and
 * headers at once, then `data: {chat.completion.chunk}` events: the first (a role chunk with empty
 * content, and the first word) `--first-chunk-delay-ms` after the request, then one word a chunk every
 * `--chunk-interval-ms`, `--chunks` words in all (scripts/bench/stream-reply.ts), then a chunk with the
 * finish reason, a usage chunk when `stream_options.include_usage` asks for it (every chunk then
 * carries `"usage":null`, as OpenAI's do), and `data: [DONE]`. A chunk waits for the socket to drain
 * (a reader that falls behind slows the stream instead of filling this process's memory), and a
 * client that goes away stops its stream.
 *
 *   node dist/scripts/bench/fake-upstream.js [--port N] [--model ID] [--delay-ms N]
 *        [--chunks N] [--first-chunk-delay-ms N] [--chunk-interval-ms N]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { streamedWord } from './stream-reply';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    model: { type: 'string', default: 'bench-model' },
    'delay-ms': { type: 'string', default: '0' },
    chunks: { type: 'string', default: '4' },
    'first-chunk-delay-ms': { type: 'string', default: '0' },
    'chunk-interval-ms': { type: 'string', default: '0' },
  },
});

function nonNegative(name: keyof typeof options, integer = false): number {
  const value = Number(options[name]);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`--${name} must be a ${integer ? 'whole number' : 'number'} >= 0, got ${options[name]}`);
  }
  return value;
}

const modelId = options.model;
const delayMs = nonNegative('delay-ms');
const chunkCount = Math.max(1, nonNegative('chunks', true));
const firstChunkDelayMs = nonNegative('first-chunk-delay-ms');
const chunkIntervalMs = nonNegative('chunk-interval-ms');
const created = 1_700_000_000;
const usage = { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 };

const jsonBody = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

const chatCompletion = jsonBody({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created,
  model: modelId,
  choices: [{ index: 0, message: { role: 'assistant', content: 'hello from the bench' }, finish_reason: 'stop' }],
  usage,
});

const textCompletion = jsonBody({
  id: 'cmpl-bench',
  object: 'text_completion',
  created,
  model: modelId,
  choices: [{ index: 0, text: 'hello from the bench', finish_reason: 'stop', logprobs: null }],
  usage,
});

const modelList = jsonBody({ object: 'list', data: [{ id: modelId, object: 'model', created, owned_by: 'bench' }] });

const notFound = jsonBody({ error: { message: 'not found', type: 'invalid_request_error', code: 'not_found' } });

const streamingUnsupported = jsonBody({
  error: { message: 'the bench upstream streams chat completions only', type: 'invalid_request_error', code: 'unsupported' },
});

/** The events of one streamed reply, serialised once: the same bytes serve every stream. */
interface StreamEvents {
  /** The role chunk and the first word, written together. */
  readonly first: Buffer;
  /** Words 1..n-1. */
  readonly words: readonly Buffer[];
  /** The finish chunk, the usage chunk when asked for, and [DONE]. */
  readonly last: Buffer;
}

function streamEvents(withUsage: boolean): StreamEvents {
  const event = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
    `data: ${JSON.stringify({
      id: 'chatcmpl-bench',
      object: 'chat.completion.chunk',
      created,
      model: modelId,
      system_fingerprint: 'fp_bench',
      choices,
      ...(withUsage ? { usage: null } : {}),
      ...extra,
    })}\n\n`;
  const word = (text: string): string => event([{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }]);
  const role = event([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]);
  const finish = event([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
  const streamUsage = { prompt_tokens: 5, completion_tokens: chunkCount, total_tokens: 5 + chunkCount };
  return {
    first: Buffer.from(role + word(streamedWord(0))),
    words: Array.from({ length: chunkCount - 1 }, (_, index) => Buffer.from(word(streamedWord(index + 1)))),
    last: Buffer.from(`${finish}${withUsage ? event([], { usage: streamUsage }) : ''}data: [DONE]\n\n`),
  };
}

const streams = { withUsage: streamEvents(true), withoutUsage: streamEvents(false) };

function send(response: ServerResponse, status: number, body: Buffer): void {
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  response.end(body);
}

function streamReply(response: ServerResponse, events: StreamEvents): void {
  response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  response.flushHeaders();
  let timer: NodeJS.Timeout | undefined;
  let next = 0;
  response.once('close', () => clearTimeout(timer));
  const writeNext = (): void => {
    timer = undefined;
    if (response.destroyed) return;
    const chunk = next === 0 ? events.first : events.words[next - 1];
    next += 1;
    if (chunk === undefined) {
      response.end(events.last);
      return;
    }
    const schedule = (): void => {
      // The finish follows the last word at once; every word after the first waits an interval.
      if (next > events.words.length) writeNext();
      else timer = setTimeout(writeNext, chunkIntervalMs);
    };
    if (response.write(chunk)) schedule();
    else response.once('drain', schedule);
  };
  timer = setTimeout(writeNext, firstChunkDelayMs);
}

type Answer = { readonly status: number; readonly body: Buffer } | { readonly stream: true };

// Searched for as bytes: the SDK writes its JSON without spaces.
const streamMarker = Buffer.from('"stream":true');
const usageMarker = Buffer.from('"include_usage":true');

function answerFor(request: IncomingMessage, body: Buffer): Answer {
  // The SDK may add a query string; only the path decides.
  const pathname = (request.url ?? '/').split('?', 1)[0];
  const streamAsked = request.method === 'POST' && body.includes(streamMarker);
  if (request.method === 'POST' && pathname === '/v1/chat/completions')
    return streamAsked ? { stream: true } : { status: 200, body: chatCompletion };
  if (request.method === 'POST' && pathname === '/v1/completions') {
    return streamAsked ? { status: 400, body: streamingUnsupported } : { status: 200, body: textCompletion };
  }
  if (request.method === 'GET' && pathname === '/v1/models') return { status: 200, body: modelList };
  return { status: 404, body: notFound };
}

const noBody: Buffer = Buffer.alloc(0);

const server = createServer((request, response) => {
  // A bench request's body arrives in one part; the rare second one is appended.
  let body = noBody;
  request.on('data', (part: Buffer) => {
    body = body.length === 0 ? part : Buffer.concat([body, part]);
  });
  // Answer once the whole request has arrived, as a real upstream would.
  request.once('end', () => {
    const answer = answerFor(request, body);
    if ('stream' in answer) {
      streamReply(response, body.includes(usageMarker) ? streams.withUsage : streams.withoutUsage);
    } else if (delayMs === 0) send(response, answer.status, answer.body);
    else setTimeout(() => send(response, answer.status, answer.body), delayMs);
  });
});

server.listen(Number(options.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
