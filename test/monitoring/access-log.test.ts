/**
 * The access log as an operator reads it: exactly one JSON line per request, whatever the request
 * became (an answer, a refusal, a 404, a stream, a client that left), with who asked, what ran, the
 * status, latency, model, tokens and cost, and never a key, a prompt or a generated text.
 */
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import * as http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { rest } from '../support/contract';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { ADMIN_KEY, bearer, FILE_KEYS, writeKeysFile } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { spawnServer } from '../support/spawn-server';
import { type RunningGateway, startGateway } from '../support/start-gateway';
import { openStream } from '../streaming/sse-client';

const MODEL = 'logged-chat';
const PRICE = { input_per_million: 3, output_per_million: 15 };
const SECRET_PROMPT = 'the quarterly numbers are confidential-7f3a';

const freshLogFile = (): string => path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-access-')), 'access.log');

/** Every line of the log, parsed. */
const linesOf = (file: string): Array<Record<string, any>> =>
  readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, any>);

/** A WebSocket upgrade the gateway refuses: its status and the request id it answered with. */
function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; requestId: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', { headers });
    socket.on('open', () => reject(new Error(`the upgrade to ${url} was accepted`)));
    socket.on('error', () => undefined);
    socket.on('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, requestId: String(response.headers['x-request-id']) });
      response.resume();
      socket.terminate();
    });
  });
}

/** An upgrade request ws refuses itself (here: a Sec-WebSocket-Version it does not speak); the id is the client's. */
function badHandshake(gateway: RunningGateway, requestId: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${gateway.url}/graphql`, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '99',
        authorization: `Bearer ${ADMIN_KEY}`,
        'x-request-id': requestId,
      },
    });
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('upgrade', () => reject(new Error('upgraded')));
    request.on('error', reject);
    request.end();
  });
}

/** Sends `bytes` on a fresh connection and reads until the server closes it. */
function rawExchange(gateway: RunningGateway, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(new URL(gateway.url).port), '127.0.0.1', () => socket.write(bytes));
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

/** llmop_http_requests_total for these labels, summed over the others. */
async function requestsCounted(gateway: RunningGateway, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`, { headers: bearer(ADMIN_KEY) })).text();
  let total = 0;
  for (const [, labelText, value] of text.matchAll(/^llmop_http_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const found = Object.fromEntries([...labelText!.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, label]) => [key!, label!]));
    if (Object.entries(labels).every(([key, label]) => found[key] === label)) total += Number(value);
  }
  return total;
}

describe('the access log', () => {
  let fake: FakeUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL] });
  });
  afterAll(() => fake.close());

  it('writes exactly one JSON line per request, with caller, route, operation, status, latency, model, tokens and cost, and no secrets', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-access-')), 'access.log');
    const gateway = await startGateway({
      catalog: { endpoints: [{ name: 'vllm', base_url: fake.url }], models: [{ id: MODEL, provider: 'vllm', pricing: PRICE }] },
      env: { ACCESS_LOG: file, API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([FILE_KEYS.alice]) },
    });
    const requestIds: string[] = [];
    let generated: { text: string; cost: number; input: number; output: number } | undefined;
    try {
      const answer = await rest(gateway, 'POST', '/generate', { prompt: SECRET_PROMPT, model_id: MODEL }, bearer(FILE_KEYS.alice.key));
      expect(answer.status).toBe(200);
      requestIds.push(answer.headers.get('x-request-id')!);
      generated = {
        text: answer.body.text,
        cost: answer.body.metadata.cost_usd.total,
        input: answer.body.metrics.input_tokens,
        output: answer.body.metrics.output_tokens,
      };
      expect(generated.text).toBe(expectedReply(SECRET_PROMPT, 100).text);

      const graphql = await gateway.graphql('{ health { status } }', undefined, bearer(ADMIN_KEY));
      requestIds.push(graphql.headers.get('x-request-id')!);
      const unauthorized = await fetch(`${gateway.url}/api/v1/models`, { headers: { authorization: 'Bearer not-a-real-key-123' } });
      expect(unauthorized.status).toBe(401);
      requestIds.push(unauthorized.headers.get('x-request-id')!);
      const missing = await fetch(`${gateway.url}/no/such/page`);
      expect(missing.status).toBe(404);
      requestIds.push(missing.headers.get('x-request-id')!);
      const stream = await openStream(
        `${gateway.url}/api/v1/generate/stream`,
        { prompt: SECRET_PROMPT, model_id: MODEL },
        bearer(ADMIN_KEY),
      );
      await stream.ended;
      requestIds.push(String(stream.headers['x-request-id']));
      // One request id sent by the client and reused: still one line each.
      for (let round = 0; round < 2; round += 1) {
        const reused = await fetch(`${gateway.url}/api/v1/health`, { headers: { 'x-request-id': 'client-chosen-id-1' } });
        requestIds.push(reused.headers.get('x-request-id')!);
      }
    } finally {
      await gateway.close();
    }

    const raw = readFileSync(file, 'utf8');
    const lines = raw.trimEnd().split('\n');
    expect(lines).toHaveLength(requestIds.length);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.map((line) => line.request_id)).toEqual(requestIds);

    expect(logged[0]).toEqual({
      time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      request_id: requestIds[0],
      caller: 'alice',
      method: 'POST',
      route: '/api/v1/generate',
      operation: 'generate',
      status: 200,
      aborted: false,
      latency_ms: expect.any(Number),
      model: MODEL,
      generations: 1,
      input_tokens: generated!.input,
      output_tokens: generated!.output,
      cost_usd: generated!.cost,
    });
    expect(logged[1]).toMatchObject({ caller: 'key-1', route: '/graphql', operation: 'health', status: 200, model: null, generations: 0 });
    expect(logged[2]).toMatchObject({ caller: null, route: '/api/v1/{unmatched}', status: 401, operation: null });
    expect(logged[3]).toMatchObject({ caller: null, route: 'unmatched', status: 404 });
    expect(logged[4]).toMatchObject({ route: '/api/v1/generate/stream', status: 200, aborted: false, model: MODEL, generations: 1 });
    expect(logged.every((line) => line.aborted === false)).toBe(true);
    expect(logged[5]).toMatchObject({ request_id: 'client-chosen-id-1', route: '/api/v1/health', status: 200 });

    for (const secret of [ADMIN_KEY, FILE_KEYS.alice.key, 'not-a-real-key-123', SECRET_PROMPT, 'confidential-7f3a', generated!.text]) {
      expect(raw).not.toContain(secret);
    }
  });

  it('waits for a stream its client cut to be recorded: the line carries what was generated and charged', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-access-')), 'access.log');
    const gateway = await startGateway({
      catalog: { endpoints: [{ name: 'vllm', base_url: fake.url }], models: [{ id: MODEL, provider: 'vllm', pricing: PRICE }] },
      env: { ACCESS_LOG: file },
    });
    let requestId: string;
    try {
      fake.chunkDelayMs = 50;
      const stream = await openStream(`${gateway.url}/api/v1/generate/stream`, {
        prompt: 'a long answer that the client will not wait for',
        model_id: MODEL,
      });
      requestId = String(stream.headers['x-request-id']);
      await stream.eventCount(2);
      stream.abort();
      const ledgerRow = async () =>
        (await rest(gateway, 'GET', '/generations?limit=1')).body.generations[0] as { status: string; cost_usd: number } | undefined;
      const row = (await poll(ledgerRow, (found) => found?.status === 'cancelled'))!;
      await gateway.close();
      const line = JSON.parse(
        readFileSync(file, 'utf8')
          .trimEnd()
          .split('\n')
          .find((candidate) => candidate.includes(requestId))!,
      );
      // Cut by its client: the 200 the server had sent, marked aborted.
      expect(line).toMatchObject({
        route: '/api/v1/generate/stream',
        status: 200,
        aborted: true,
        model: MODEL,
        generations: 1,
        cost_usd: row.cost_usd,
      });
      expect(line.output_tokens).toBeGreaterThan(0);
    } finally {
      fake.chunkDelayMs = 0;
      await gateway.close();
    }
  });

  it('keeps serving when the log cannot be written (a full disk), and still shuts down', async () => {
    const gateway = await startGateway({ env: { ACCESS_LOG: '/dev/full' } });
    try {
      for (let request = 0; request < 20; request += 1) {
        expect((await fetch(`${gateway.url}/api/v1/health`)).status).toBe(200);
      }
    } finally {
      await gateway.close();
    }
  });

  it('gives every WebSocket upgrade one line: a refused one at once with its status, an accepted one (101) when its socket closes', async () => {
    const file = freshLogFile();
    const gateway = await startGateway({
      catalog: { endpoints: [{ name: 'vllm', base_url: fake.url }], models: [{ id: MODEL, provider: 'vllm', pricing: PRICE }] },
      env: { ACCESS_LOG: file, API_KEYS: ADMIN_KEY },
    });
    const wsBase = gateway.url.replace(/^http/, 'ws');
    let notFound: { status: number; requestId: string };
    let unauthorized: { status: number; requestId: string };
    let accepted: string | undefined;
    let streamedMs = 0;
    let cut: string | undefined;
    let refusedAtInit: string | undefined;
    let acceptedId: string | undefined;
    try {
      notFound = await refusedUpgrade(`${wsBase}/elsewhere`, bearer(ADMIN_KEY));
      expect(notFound.status).toBe(404);
      unauthorized = await refusedUpgrade(`${wsBase}/graphql`, bearer('not-a-real-key-456'));
      expect(unauthorized.status).toBe(401);
      expect(await badHandshake(gateway, 'bad-handshake-1')).toBe(400);

      // Accepted, its key in connectionParams: a subscription and a query on one socket, which the client
      // closes (1000) once both are done.
      fake.chunkDelayMs = 30;
      // The 101's request id, read as the socket upgrades.
      class RecordingWebSocket extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols);
          this.once('upgrade', (response) => {
            accepted = String(response.headers['x-request-id']);
          });
        }
      }
      const client = createWsClient({
        url: `${wsBase}/graphql`,
        webSocketImpl: RecordingWebSocket,
        connectionParams: { authorization: `Bearer ${ADMIN_KEY}` },
        retryAttempts: 0,
      });
      const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
      const stream = client.iterate({
        query: 'subscription ($prompt: String!, $model_id: String!) { generate_stream(prompt: $prompt, model_id: $model_id) { text } }',
        variables: { prompt: SECRET_PROMPT, model_id: MODEL },
      });
      const health = client.iterate({ query: '{ health { status } }' });
      let firstAt: number | undefined;
      for await (const event of stream) {
        firstAt ??= performance.now();
        expect(event.errors).toBeUndefined();
      }
      streamedMs = performance.now() - firstAt!;
      for await (const event of health) expect(event.data).toEqual({ health: { status: expect.any(String) } });
      expect(await closed).toBe(1000);

      // Accepted (the key in the upgrade's header), then dropped without a close frame.
      cut = await new Promise<string>((resolve, reject) => {
        const socket = new WebSocket(`${wsBase}/graphql`, 'graphql-transport-ws', { headers: bearer(ADMIN_KEY) });
        let requestId = '';
        socket.on('upgrade', (response) => {
          requestId = String(response.headers['x-request-id']);
        });
        socket.on('open', () => socket.terminate());
        socket.on('close', () => resolve(requestId));
        socket.on('error', reject);
      });

      // Accepted, then refused at connection_init: a wrong key in connectionParams closes the socket with 4401.
      acceptedId = accepted;
      const refusedInit = createWsClient({
        url: `${wsBase}/graphql`,
        webSocketImpl: RecordingWebSocket,
        connectionParams: { authorization: 'Bearer not-a-real-key-789' },
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => undefined, // expected: the refusal itself
      });
      const refusedCode = await new Promise<number>((resolve) =>
        refusedInit.on('closed', (event) => resolve((event as { code: number }).code)),
      );
      expect(refusedCode).toBe(4401);
      refusedAtInit = accepted;

      // Counted as requests too, once their sockets have closed.
      const upgrades = await poll(
        () => requestsCounted(gateway, { route: '/graphql', method: 'GET', status: '101' }),
        (count) => count === 2,
      );
      expect(upgrades).toBe(2);
      // The refused-at-init socket is counted when the server sees it close, which may follow the client's event.
      expect(
        await poll(
          () => requestsCounted(gateway, { route: '/graphql', method: 'GET', status: '401' }),
          (count) => count === 2,
        ),
      ).toBe(2);
      // A connection's 101 is counted, not timed: hours of a socket would swamp the route's latency quantiles.
      const scraped = await (await fetch(`${gateway.url}/metrics`, { headers: bearer(ADMIN_KEY) })).text();
      expect(scraped).toContain('llmop_http_request_duration_seconds_count{route="/graphql",method="GET",status="401"}');
      expect(scraped).not.toContain('llmop_http_request_duration_seconds_count{route="/graphql",method="GET",status="101"}');
      expect(await requestsCounted(gateway, { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    } finally {
      fake.chunkDelayMs = 0;
      await gateway.close();
    }

    // Exactly one line each (the two accepted ones written as their sockets closed).
    const lines = linesOf(file).filter((line) => line.route !== '/metrics');
    const ids = [notFound.requestId, unauthorized.requestId, 'bad-handshake-1', acceptedId!, cut!, refusedAtInit!];
    expect(lines.map((line) => line.request_id).sort()).toEqual([...ids].sort());
    const [notFoundLine, unauthorizedLine, badHandshakeLine, acceptedLine, cutLine, refusedAtInitLine] = ids.map(
      (id) => lines.find((line) => line.request_id === id)!,
    );
    expect(notFoundLine).toMatchObject({ method: 'GET', route: 'unmatched', status: 404, aborted: false, caller: null, operation: null });
    // A refused upgrade: no caller, nothing run.
    const refusedUpgradeLine = (status: number) => ({
      method: 'GET',
      route: '/graphql',
      status,
      aborted: false,
      caller: null,
      operation: null,
    });
    expect(unauthorizedLine).toMatchObject(refusedUpgradeLine(401));
    expect(badHandshakeLine).toMatchObject(refusedUpgradeLine(400));
    expect(acceptedLine).toMatchObject({ method: 'GET', route: '/graphql', status: 101, aborted: false, caller: 'key-1' });
    // The connection is the request: the generation its subscription made is on its line, under its id.
    expect(acceptedLine).toMatchObject({
      model: MODEL,
      generations: 1,
      input_tokens: expect.any(Number),
      output_tokens: expect.any(Number),
    });
    expect(acceptedLine!.output_tokens).toBeGreaterThan(0);
    expect(acceptedLine!.cost_usd).toBeGreaterThan(0);
    expect(String(acceptedLine!.operation).split(',').sort()).toEqual(['generate_stream', 'health']);
    // The connection outlived the stream it carried.
    expect(acceptedLine!.latency_ms).toBeGreaterThan(streamedMs);
    expect(refusedAtInitLine).toMatchObject(refusedUpgradeLine(401));
    expect(cutLine).toMatchObject({ method: 'GET', route: '/graphql', status: 101, aborted: true, caller: 'key-1', operation: null });

    const raw = readFileSync(file, 'utf8');
    for (const secret of [ADMIN_KEY, 'not-a-real-key-456', SECRET_PROMPT, 'confidential-7f3a']) expect(raw).not.toContain(secret);
  });

  it('gives each request its own generations, even when a WebSocket and an HTTP request send the same X-Request-Id', async () => {
    const file = freshLogFile();
    const gateway = await startGateway({
      catalog: { endpoints: [{ name: 'vllm', base_url: fake.url }], models: [{ id: MODEL, provider: 'vllm', pricing: PRICE }] },
      env: { ACCESS_LOG: file, API_KEYS: ADMIN_KEY },
    });
    const sharedId = 'client-chosen-id-1';
    class WithSharedId extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers: { 'x-request-id': sharedId, ...bearer(ADMIN_KEY) } });
      }
    }
    let openGate = (): void => undefined;
    try {
      const client = createWsClient({
        url: `${gateway.url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WithSharedId,
        retryAttempts: 0,
      });
      const closed = new Promise<void>((resolve) => client.on('closed', () => resolve()));
      // The HTTP generation is held at the upstream while the WebSocket's runs: both requests are open at once.
      fake.holdAnswersUntil = new Promise<void>((resolve) => {
        openGate = resolve;
      });
      const held = rest(
        gateway,
        'POST',
        '/generate',
        { prompt: 'over http', model_id: MODEL },
        { ...bearer(ADMIN_KEY), 'x-request-id': sharedId },
      );
      await poll(
        async () => fake.requests.filter((request) => JSON.stringify(request.body ?? null).includes('over http')).length,
        (count) => count === 1,
      );
      fake.holdAnswersUntil = undefined;
      for await (const event of client.iterate({
        query: 'mutation ($m: String!) { generate(prompt: "over the socket, a longer prompt", model_id: $m) { text } }',
        variables: { m: MODEL },
      })) {
        expect(event.errors).toBeUndefined();
      }
      openGate();
      expect((await held).status).toBe(200);
      await client.dispose();
      await closed;
      // Both lines come at once (no 30 s wait for a record that went elsewhere), each with its own generation.
      const lines = await poll(
        async () => linesOf(file).filter((line) => line.request_id === sharedId),
        (found) => found.length === 2,
      );
      const byRoute = new Map(lines.map((line) => [line.route, line]));
      expect(byRoute.get('/api/v1/generate')).toMatchObject({ status: 200, generations: 1, model: MODEL });
      expect(byRoute.get('/graphql')).toMatchObject({ status: 101, generations: 1, model: MODEL });
      expect(byRoute.get('/graphql')!.input_tokens).toBeGreaterThan(byRoute.get('/api/v1/generate')!.input_tokens);
    } finally {
      openGate();
      fake.holdAnswersUntil = undefined;
      await gateway.close();
    }
  });

  it("writes one line for a request Node cannot parse (its 400 or 431 carries the id; a body that breaks keeps its request's id), and none for a connection that only resets", async () => {
    const file = freshLogFile();
    const gateway = await startGateway({ env: { ACCESS_LOG: file } });
    let answer: string;
    let malformedBody: string;
    let headersTooLarge: string;
    let bodyIgnored: string;
    let answeredFirst: string;
    try {
      answer = await rawExchange(
        gateway,
        `GET /api/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-in-a-bad-request\r\nBad Header\r\n\r\n`,
      );
      // Headers Node reads, then a chunked body it cannot: the request is already being served.
      malformedBody = await rawExchange(
        gateway,
        'POST /api/v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"pro\r\nZZZ\r\n',
      );
      // The same on a route that answers without reading the body: the line says the status the wire carried.
      bodyIgnored = await rawExchange(
        gateway,
        'GET /api/v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"pro\r\nZZZ\r\n',
      );
      // Answered (404) before its body broke: no second answer, no second line.
      answeredFirst = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(new URL(gateway.url).port), '127.0.0.1', () =>
          socket.write('POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"pro\r\n'),
        );
        let received = '';
        socket.on('data', (chunk) => {
          if (!received.includes('\r\n\r\n') && `${received}${chunk}`.includes('\r\n\r\n')) socket.write('ZZZ\r\n'); // broken once answered
          received += chunk.toString('latin1');
        });
        socket.on('close', () => resolve(received));
        socket.on('error', reject);
      });
      // Headers past Node's limit (16 KiB).
      headersTooLarge = await rawExchange(gateway, `GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Padding: ${'p'.repeat(20_000)}\r\n\r\n`);
      // A client that connects and resets before sending anything.
      await new Promise<void>((resolve) => {
        const socket = net.connect(Number(new URL(gateway.url).port), '127.0.0.1', () => socket.resetAndDestroy());
        socket.on('close', () => resolve());
      });
      // Served after both: it proves the reset was handled before the log closed.
      expect((await fetch(`${gateway.url}/api/v1/health`)).status).toBe(200);
    } finally {
      await gateway.close();
    }
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const requestId = /\r\nX-Request-Id: ([^\r]+)\r\n/i.exec(answer)?.[1];
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const lines = linesOf(file);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toEqual({
      time: expect.any(String),
      request_id: requestId,
      caller: null,
      method: 'unknown',
      route: 'unmatched',
      operation: null,
      status: 400,
      aborted: false,
      latency_ms: expect.any(Number),
      model: null,
      generations: 0,
      input_tokens: 0,
      output_tokens: 0,
      cost_usd: 0,
    });
    // The request whose body broke keeps its own id, on its answer and on its one line.
    expect(malformedBody).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const malformedId = /\r\nX-Request-Id: ([^\r]+)\r\n/i.exec(malformedBody)?.[1];
    expect(lines[1]).toMatchObject({ request_id: malformedId, method: 'POST', route: '/api/v1/generate', status: 400 });
    const statusesOnWire = (answer: string): number[] => [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
    const [ignoredStatus] = statusesOnWire(bodyIgnored);
    expect(statusesOnWire(bodyIgnored)).toHaveLength(1);
    expect(lines[2]).toMatchObject({ method: 'GET', route: '/api/v1/models', status: ignoredStatus });
    expect(statusesOnWire(answeredFirst)).toEqual([404]);
    expect(lines[3]).toMatchObject({ method: 'POST', route: 'unmatched', status: 404 });
    expect(headersTooLarge).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(JSON.parse(headersTooLarge.slice(headersTooLarge.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'headers_too_large' });
    expect(lines[4]).toMatchObject({ method: 'unknown', route: 'unmatched', status: 431 });
    expect(lines[5]).toMatchObject({ route: '/api/v1/health', status: 200 });
    expect(readFileSync(file, 'utf8')).not.toContain('secret-in-a-bad-request');
  });

  it('writes lines together after ACCESS_LOG_FLUSH_MS, and shutdown writes the lines still waiting', async () => {
    const file = freshLogFile();
    // A minute: nothing is written by the timer within this test, so what the file holds came from shutdown.
    const server = spawnServer({
      ACCESS_LOG: file,
      ACCESS_LOG_FLUSH_MS: '60000',
      MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')),
    });
    let ids: string[] = [];
    try {
      const url = await server.listening;
      ids = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const response = await fetch(`${url}/api/v1/health`);
          expect(response.status).toBe(200);
          return response.headers.get('x-request-id')!;
        }),
      );
      // Answered, yet not written: the lines wait for their flush.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(existsSync(file) ? readFileSync(file, 'utf8') : '').toBe('');
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
    const written = linesOf(file).map((line) => line.request_id);
    expect(written.sort()).toEqual([...ids].sort());
  });

  it('opens its file again on SIGHUP: after logrotate moves it away, the next lines go to a new file at the same path', async () => {
    const file = freshLogFile();
    const server = spawnServer({ ACCESS_LOG: file, MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')) });
    const readLog = async (): Promise<string> => (existsSync(file) ? readFileSync(file, 'utf8') : '');
    const healthId = async (url: string): Promise<string> => {
      const response = await fetch(`${url}/api/v1/health`);
      expect(response.status).toBe(200);
      return response.headers.get('x-request-id')!;
    };
    try {
      const url = await server.listening;
      const before = await healthId(url);
      expect(await poll(readLog, (text) => text.includes(before))).toContain(before);
      renameSync(file, `${file}.1`);
      server.child.kill('SIGHUP');
      await poll(
        async () => server.output(),
        (output) => output.includes('reopening the access log'),
      );
      const after = await healthId(url);
      const reopened = await poll(readLog, (text) => text.includes(after));
      expect(reopened).toContain(after);
      expect(reopened).not.toContain(before);
      const rotated = readFileSync(`${file}.1`, 'utf8');
      expect(rotated).toContain(before);
      expect(rotated).not.toContain(after);
    } finally {
      server.child.kill('SIGTERM');
    }
    // SIGHUP did not end it: SIGTERM does, cleanly.
    expect(await server.exited).toBe(0);
  });
});
