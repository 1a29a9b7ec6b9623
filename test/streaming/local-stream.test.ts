/**
 * Streaming from local GGUF models (issue 15) through POST /api/v1/generate/stream, in a real server
 * process (node-llama-cpp cannot load inside jest's sandbox): the deltas, as llama.cpp samples them,
 * add up to the done event's text and to what POST /generate answers for the same greedy or seeded
 * request; a client that goes away frees the model's only sequence; SIGTERM sends open streams an
 * error event and records them before the process exits. Needs `npm run build`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { demoModelPresets, writeDemoModel } from '../../scripts/gguf/demo-model';
import { openDatabase } from '../../src/storage/database';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import { writeDemoModelFixture } from '../local/demo-model-fixture';
import { expectToMatchSchemaAt } from '../support/contract';
import type { LedgerGeneration } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { spawnServer, type SpawnedServer } from '../support/spawn-server';
import { dataOf, joinedDeltas, openStream, type ReceivedEvent } from './sse-client';

let modelsDir: string;

async function post(url: string, pathname: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function getJson(url: string, pathname: string): Promise<any> {
  const response = await fetch(`${url}${pathname}`);
  expect(response.status).toBe(200);
  return response.json();
}

/** Every event a delta but the last, `done`; returns the done data. */
function doneOf(events: readonly ReceivedEvent[]): any {
  expect(events.slice(0, -1).every((event) => event.event === 'delta')).toBe(true);
  expect(events.at(-1)?.event).toBe('done');
  return dataOf(events.at(-1)!);
}

beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'llmop-local-stream-'));
  await writeDemoModel(path.join(modelsDir, 'demo.gguf'), demoModelPresets.tiny);
  await writeDemoModel(path.join(modelsDir, 'demo-chat.gguf'), { ...demoModelPresets.tiny, chatTemplate: 'chatml', name: 'demo-chat' });
  await writeDemoModel(path.join(modelsDir, 'demo-stops.gguf'), { ...demoModelPresets.tiny, endOfTextGain: 4, name: 'demo-stops' });
  // Big enough that a long generation takes seconds on one thread.
  await writeDemoModelFixture(path.join(modelsDir, 'slow.gguf'), demoModelPresets.bench);
}, 120_000);

afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

describe('a local model streamed over POST /api/v1/generate/stream, one sequence', () => {
  let server: SpawnedServer;
  let url: string;

  const streamed = async (body: Record<string, unknown>): Promise<{ events: ReceivedEvent[]; done: any }> => {
    const opened = await openStream(`${url}/api/v1/generate/stream`, body);
    expect(opened.status).toBe(200);
    const events = await opened.ended;
    return { events, done: doneOf(events) };
  };

  beforeAll(async () => {
    server = spawnServer({ MODELS_DIR: modelsDir, LOCAL_THREADS: '1', LOCAL_SEQUENCES: '1' });
    url = await server.listening;
  }, 60_000);

  afterAll(async () => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it.each([
    ['greedy, cut by max_tokens', { model_id: 'demo', prompt: 'The weather today is', max_tokens: 12, temperature: 0 }],
    ['seeded sampling', { model_id: 'demo', prompt: 'Language models', max_tokens: 20, temperature: 1.2, top_p: 0.95, seed: 42 }],
    ['a chat template', { model_id: 'demo-chat', prompt: 'How do I reset my password?', max_tokens: 24, temperature: 0 }],
  ])('sends deltas that add up to the done text, the same as POST /generate (%s)', async (_case, body) => {
    const { events, done } = await streamed(body);
    expectToMatchSchemaAt(done, '#/components/schemas/GenerateResponse', 'the done event');
    expect(events.length).toBeGreaterThan(2);
    expect(joinedDeltas(events)).toBe(done.text);
    expect(done.metadata).toMatchObject({ provider: 'local', token_source: 'upstream', generation_id: expect.any(String) });

    const whole = await post(url, '/api/v1/generate', body);
    expect(whole.status).toBe(200);
    expect(whole.body.text).toBe(done.text);
    expect(whole.body.metrics).toMatchObject({ input_tokens: done.metrics.input_tokens, output_tokens: done.metrics.output_tokens });
    if (body.model_id === 'demo') {
      expect(done.metrics.output_tokens).toBe(body.max_tokens);
      expect(done.metadata.finish_reason).toBe('length');
    }

    const row = (await getJson(url, `/api/v1/generations/${done.metadata.generation_id}`)) as LedgerGeneration;
    expect(row).toMatchObject({
      source: 'stream',
      status: 'succeeded',
      text: done.text,
      metrics: { input_tokens: done.metrics.input_tokens, output_tokens: done.metrics.output_tokens },
    });
  });

  it('sends deltas that add up to the done text when the model stops by itself before max_tokens', async () => {
    const prompts = ['Hello', 'The weather', 'GraphQL', 'Models are', 'Rain falls', 'Serving models'];
    let stopped = 0;
    for (const prompt of prompts) {
      const body = { model_id: 'demo-stops', prompt, max_tokens: 64, temperature: 0 };
      const { events, done } = await streamed(body);
      expect(joinedDeltas(events)).toBe(done.text);
      expect(done.text).not.toContain('<|end_of_text|>');
      expect((await post(url, '/api/v1/generate', body)).body.text).toBe(done.text);
      if (done.metadata.finish_reason === 'stop') {
        stopped += 1;
        expect(done.metrics.output_tokens).toBeLessThan(64);
      }
    }
    expect(stopped).toBeGreaterThan(0);
  });

  it('frees the only sequence when the client disconnects mid-stream: the next request completes', async () => {
    const opened = await openStream(`${url}/api/v1/generate/stream`, {
      model_id: 'slow',
      prompt: 'a very long answer',
      max_tokens: 900,
      temperature: 0,
    });
    expect(opened.status).toBe(200);
    const received = joinedDeltas(await opened.eventCount(2));
    opened.abort();

    // With the sequence still held, this would wait behind the abandoned 900 tokens.
    const next = await post(url, '/api/v1/generate', { model_id: 'slow', prompt: 'short', max_tokens: 4 });
    expect(next.status).toBe(200);
    expect(next.body.metrics.output_tokens).toBe(4);

    const cancelled = await poll(
      async () => (await getJson(url, '/api/v1/generations?status=cancelled&model_id=slow')).generations as LedgerGeneration[],
      (rows) => rows.length > 0,
    );
    expect(cancelled).toHaveLength(1);
    const row = cancelled[0]!;
    expect(row).toMatchObject({ source: 'stream', status: 'cancelled', error: 'cancelled' });
    // The server may have sampled a few more tokens than the client read before it noticed.
    expect(row.text!.startsWith(received)).toBe(true);
    expect(row.metrics.output_tokens).toBeGreaterThan(0);
    expect(row.metrics.output_tokens).toBeLessThan(900 / 2);
    // It finished before the next request did: the abandoned generation stopped, it did not run on.
    const nextRow = (await getJson(url, `/api/v1/generations/${next.body.metadata.generation_id}`)) as LedgerGeneration;
    expect(nextRow.status).toBe('succeeded');
  }, 60_000);
});

describe('a server stopped with SIGTERM while a local stream is open', () => {
  it('sends the stream an error event (503 service_unavailable) and records its row before the process exits', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'llmop-local-sigterm-'));
    const server = spawnServer({ MODELS_DIR: modelsDir, LOCAL_THREADS: '1', LOCAL_SEQUENCES: '1', DATA_DIR: dataDir });
    try {
      const url = await server.listening;
      const opened = await openStream(`${url}/api/v1/generate/stream`, {
        model_id: 'slow',
        prompt: 'a long answer cut by a shutdown',
        max_tokens: 900,
        temperature: 0,
      });
      expect(opened.status).toBe(200);
      await opened.eventCount(2);
      server.child.kill('SIGTERM');

      const events = await opened.ended;
      const last = events.at(-1)!;
      expect(last.event).toBe('error');
      const error = dataOf(last);
      expectToMatchSchemaAt(error, '#/components/schemas/ErrorResponse', 'the error event');
      expect(error.error).toBe('service_unavailable');
      expect(await server.exited).toBe(0);

      // Read straight from the ledger the process left: no start-up sweep has run on it since.
      const database = await openDatabase({ sqliteFile: path.join(dataDir, 'llmop.db') });
      try {
        const page = await new LedgerRepository(database, { recordContent: true }).list({}, { limit: 10 });
        expect(page.generations).toHaveLength(1);
        const row = page.generations[0]!;
        expect(row).toMatchObject({ source: 'stream', status: 'cancelled', error: 'interrupted' });
        expect(row.text!.startsWith(joinedDeltas(events))).toBe(true);
        expect(row.outputTokens).toBeGreaterThan(0);
        // A row closed by a start-up sweep would have no text and no latency.
        expect(row.latencyMs).toBeGreaterThan(0);
      } finally {
        await database.close();
      }
    } finally {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
