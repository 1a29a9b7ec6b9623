/**
 * The bench's upstream: a lean OpenAI-compatible server in its own process, so that the gateway's
 * cost is what the bench measures. Every answer is a fixed, pre-serialised body; the request body is
 * read and discarded, never parsed. Prints `{"port":N}` on stdout once it listens. With `--delay-ms N`
 * every answer leaves N ms after its request has arrived (a timer, no CPU spent waiting): the bench's
 * evaluation phase uses one such upstream so that its cells take as long as a (fast) real model would.
 *
 *   node dist/scripts/bench/fake-upstream.js [--port N] [--model ID] [--delay-ms N]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    model: { type: 'string', default: 'bench-model' },
    'delay-ms': { type: 'string', default: '0' },
  },
});
const modelId = options.model;
const delayMs = Number(options['delay-ms']);
if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error(`--delay-ms must be a number >= 0, got ${options['delay-ms']}`);
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

function send(response: ServerResponse, status: number, body: Buffer): void {
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  response.end(body);
}

function bodyFor(request: IncomingMessage): { status: number; body: Buffer } {
  // The SDK may add a query string; only the path decides.
  const pathname = (request.url ?? '/').split('?', 1)[0];
  if (request.method === 'POST' && pathname === '/v1/chat/completions') return { status: 200, body: chatCompletion };
  if (request.method === 'POST' && pathname === '/v1/completions') return { status: 200, body: textCompletion };
  if (request.method === 'GET' && pathname === '/v1/models') return { status: 200, body: modelList };
  return { status: 404, body: notFound };
}

const server = createServer((request, response) => {
  const { status, body } = bodyFor(request);
  // Answer once the whole request has arrived, as a real upstream would.
  request.resume();
  request.once('end', () => {
    if (delayMs === 0) send(response, status, body);
    else setTimeout(() => send(response, status, body), delayMs);
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
