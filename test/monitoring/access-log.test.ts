/**
 * The access log as an operator reads it: exactly one JSON line per request, whatever the request
 * became (an answer, a refusal, a 404, a stream, a client that left), with who asked, what ran, the
 * status, latency, model, tokens and cost, and never a key, a prompt or a generated text.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rest } from '../support/contract';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { ADMIN_KEY, bearer, FILE_KEYS, writeKeysFile } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway } from '../support/start-gateway';
import { openStream } from '../streaming/sse-client';

const MODEL = 'logged-chat';
const PRICE = { input_per_million: 3, output_per_million: 15 };
const SECRET_PROMPT = 'the quarterly numbers are confidential-7f3a';

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
    expect(logged[4]).toMatchObject({ route: '/api/v1/generate/stream', status: 200, model: MODEL, generations: 1 });
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
      expect(line).toMatchObject({ route: '/api/v1/generate/stream', model: MODEL, generations: 1, cost_usd: row.cost_usd });
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
});
