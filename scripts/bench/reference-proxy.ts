/**
 * The bench's reference: about the least a Node process does to put itself between a client and an
 * OpenAI-compatible upstream, measured beside LLMOP in the same run so that the figures say what this
 * machine allows any Node gateway. node:http, one JSON parse, one `undici.request` over a keep-alive
 * pool to the same upstream, and the answer as JSON, or the upstream's deltas relayed as LLMOP's
 * `delta` events. No authentication, admission, ledger, budget, metrics or validation: not a gateway.
 *
 * Environment: PORT, UPSTREAM_URL (the fake upstream's base URL). Serves GET /api/v1/ready,
 * POST /api/v1/generate and POST /api/v1/generate/stream with LLMOP's request body.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent, request } from 'undici';

interface GenerateBody {
  readonly prompt: string;
  readonly model_id: string;
  readonly max_tokens?: number;
}

const upstreamUrl = process.env.UPSTREAM_URL;
const port = Number(process.env.PORT);
if (!upstreamUrl || !Number.isInteger(port)) {
  console.error('reference-proxy: PORT and UPSTREAM_URL are required');
  process.exit(2);
}
const dispatcher = new Agent({ connections: 64 });

async function readJson(incoming: IncomingMessage): Promise<GenerateBody> {
  let text = '';
  incoming.setEncoding('utf8');
  for await (const chunk of incoming) text += chunk;
  return JSON.parse(text) as GenerateBody;
}

async function relay(response: ServerResponse, stream: boolean, input: GenerateBody): Promise<void> {
  const upstream = await request(`${upstreamUrl}/v1/chat/completions`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: input.model_id,
      messages: [{ role: 'user', content: input.prompt }],
      max_tokens: input.max_tokens,
      ...(stream ? { stream: true } : {}),
    }),
  });
  if (!stream) {
    const completion = (await upstream.body.json()) as { choices: { message: { content: string } }[]; usage: unknown };
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ text: completion.choices[0]?.message.content, model_id: input.model_id, metrics: completion.usage }));
    return;
  }
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  response.flushHeaders();
  upstream.body.setEncoding('utf8');
  let pending = '';
  let text = '';
  for await (const chunk of upstream.body) {
    pending += chunk;
    for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
      const data = pending.slice(0, end).replace(/^data: ?/, '');
      pending = pending.slice(end + 2);
      if (data === '[DONE]') continue;
      const delta = (JSON.parse(data) as { choices?: { delta?: { content?: string | null } }[] }).choices?.[0]?.delta?.content;
      if (!delta) continue;
      text += delta;
      response.write(`event: delta\ndata: ${JSON.stringify({ text: delta })}\n\n`);
    }
  }
  response.end(`event: done\ndata: ${JSON.stringify({ text })}\n\n`);
}

createServer((incoming, response) => {
  if (incoming.method === 'GET' && incoming.url === '/api/v1/ready') {
    response.setHeader('content-type', 'application/json');
    response.end('{"ready":true}');
    return;
  }
  const stream = incoming.url === '/api/v1/generate/stream';
  if (incoming.method !== 'POST' || (!stream && incoming.url !== '/api/v1/generate')) {
    response.statusCode = 404;
    response.end();
    return;
  }
  readJson(incoming)
    .then((input) => relay(response, stream, input))
    .catch((error: unknown) => {
      if (!response.headersSent) response.statusCode = 502;
      response.end(String(error));
    });
}).listen(port, '127.0.0.1');
