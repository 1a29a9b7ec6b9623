/**
 * The ledger's guarantees across a crash of the real server process (dist/src/start.js: run
 * `npm run build` first) on its embedded SQLite ledger in DATA_DIR:
 * - a generation answered 200 is in the ledger even when the process is SIGKILLed the moment the
 *   answer arrives (its row is committed before the answer is written);
 * - a generation in flight at the kill is closed as `cancelled` at the next start on the same DATA_DIR.
 */
import * as http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { expectToMatchContract, rest } from '../support/contract';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import {
  CHAT_MODEL,
  generationCalls,
  LEDGER_MODELS,
  type LedgerGeneration,
  ledgerCatalog,
  type UsageReport,
} from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { spawnServer, type SpawnedServer } from '../support/spawn-server';

interface Answer {
  readonly status: number;
  /** The parsed body, when it arrived whole. */
  readonly body: any;
}

/**
 * POSTs /api/v1/generate; `onResponse` runs synchronously as soon as the status line and headers are
 * parsed (before the body is read). Resolves with the status and the body, or undefined when the
 * connection broke first.
 */
function postGenerate(url: string, prompt: string, onResponse?: (status: number) => void): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const request = http.request(
      `${url}/api/v1/generate`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (response) => {
        onResponse?.(response.statusCode ?? 0);
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch {
            resolve(undefined);
          }
        });
        response.on('error', () => resolve(undefined));
        response.on('aborted', () => resolve(undefined));
      },
    );
    request.on('error', () => resolve(undefined));
    request.end(JSON.stringify({ prompt, model_id: CHAT_MODEL, max_tokens: 50 }));
  });
}

interface StoredRow {
  id: string;
  status: string;
  prompt: string | null;
  text: string | null;
  output_tokens: number;
}

/** The ledger file as it is on disk, opened read-only (no server running). */
function readLedgerFile(dataDir: string): StoredRow[] {
  const database = new BetterSqlite3(path.join(dataDir, 'llmop.db'), { readonly: true, fileMustExist: true });
  try {
    return database.prepare('select id, status, prompt, text, output_tokens from generations order by created_at, id').all() as StoredRow[];
  } finally {
    database.close();
  }
}

describe('the ledger across a SIGKILL of the server (SQLite in DATA_DIR)', () => {
  let fake: FakeUpstream;
  let catalogFile: string;
  const servers: SpawnedServer[] = [];

  const start = async (dataDir: string): Promise<{ server: SpawnedServer; url: string }> => {
    const server = spawnServer({
      DATA_DIR: dataDir,
      MODEL_CATALOG: catalogFile,
      MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')),
      UPSTREAM_MAX_RETRIES: '0',
      LOG_LEVEL: 'info',
    });
    servers.push(server);
    return { server, url: await server.listening };
  };
  const stop = async (server: SpawnedServer): Promise<void> => {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
    await server.exited;
  };

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-crash-catalog-'));
    catalogFile = path.join(directory, 'catalog.json');
    writeFileSync(catalogFile, JSON.stringify(ledgerCatalog(fake)));
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      await server.exited;
    }
  });
  afterAll(() => fake.close());

  it('keeps every generation answered 200 when the process is SIGKILLed as the first answer arrives (three crashes in a row)', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-crash-data-'));
    const answered: Array<{ prompt: string; body: any }> = [];
    for (let round = 0; round < 3; round++) {
      const { server, url } = await start(dataDir);
      const prompts = Array.from({ length: 8 }, (_, index) => `answered then killed ${round}-${index}`);
      const answers = await Promise.all(
        prompts.map((prompt) =>
          postGenerate(url, prompt, (status) => {
            if (status === 200) server.child.kill('SIGKILL');
          }),
        ),
      );
      expect(await server.exited).toBe('SIGKILL');
      const thisRound = answers.flatMap((answer, index) =>
        answer?.status === 200 ? [{ prompt: prompts[index]!, body: answer.body }] : [],
      );
      expect(thisRound.length).toBeGreaterThanOrEqual(1);
      answered.push(...thisRound);

      // On disk, before anything else opens the file: this round's answers and every earlier one.
      const rows = readLedgerFile(dataDir);
      for (const { prompt, body } of answered) {
        expect(body.metadata.generation_id).toEqual(expect.any(String));
        expect(rows.find((row) => row.id === body.metadata.generation_id)).toEqual({
          id: body.metadata.generation_id,
          status: 'succeeded',
          prompt,
          text: expectedReply(prompt, 50).text,
          output_tokens: body.metrics.output_tokens,
        });
      }
    }

    // And through the restarted server.
    const restarted = await start(dataDir);
    for (const { prompt, body } of answered) {
      const response = await rest<LedgerGeneration>({ url: restarted.url }, 'GET', `/generations/${body.metadata.generation_id}`);
      expectToMatchContract(response, '/generations/{generation_id}', 'get');
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        id: body.metadata.generation_id,
        status: 'succeeded',
        source: 'generate',
        caller: 'anonymous',
        prompt,
        text: body.text,
        metrics: { input_tokens: body.metrics.input_tokens, output_tokens: body.metrics.output_tokens },
      });
      expect(response.body.cost_usd).toBeCloseTo(body.metadata.cost_usd.total, 12);
    }
    await stop(restarted.server);
  });

  it('closes a generation in flight at the kill as cancelled at the next start on the same DATA_DIR', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-crash-data-'));
    const { server, url } = await start(dataDir);
    const finished = await postGenerate(url, 'finished before the crash');
    expect(finished?.status).toBe(200);

    fake.defaultBehaviour = { kind: 'timeout' }; // the upstream never answers: the next generation stays in flight
    const hanging = postGenerate(url, 'in flight at the crash');
    await poll(
      async () => generationCalls(fake).length,
      (calls) => calls === 2,
    );
    expect(generationCalls(fake)).toHaveLength(2);
    server.child.kill('SIGKILL');
    expect(await server.exited).toBe('SIGKILL');
    expect(await hanging).toBeUndefined();

    // The in-flight generation's row was on disk, not finished.
    const onDisk = readLedgerFile(dataDir);
    expect(onDisk.map((row) => [row.prompt, row.status])).toEqual([
      ['finished before the crash', 'succeeded'],
      ['in flight at the crash', 'in_progress'],
    ]);
    const inFlightId = onDisk[1]!.id;

    const restarted = await start(dataDir);
    const cancelled = await rest<{ generations: LedgerGeneration[]; next_cursor: string | null }>(
      { url: restarted.url },
      'GET',
      '/generations?status=cancelled',
    );
    expectToMatchContract(cancelled, '/generations', 'get');
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.generations).toHaveLength(1);
    expect(cancelled.body.generations[0]).toMatchObject({
      id: inFlightId,
      status: 'cancelled',
      source: 'generate',
      caller: 'anonymous',
      model_id: CHAT_MODEL,
      prompt: 'in flight at the crash',
      metrics: { output_tokens: 0 },
    });

    const one = await rest<LedgerGeneration>({ url: restarted.url }, 'GET', `/generations/${inFlightId}`);
    expectToMatchContract(one, '/generations/{generation_id}', 'get');
    expect([one.status, one.body.status]).toEqual([200, 'cancelled']);
    const all = await rest<{ generations: LedgerGeneration[] }>({ url: restarted.url }, 'GET', '/generations');
    expect(all.body.generations.map((generation) => generation.status)).toEqual(['cancelled', 'succeeded']);

    // A cancelled generation counts among the requests only.
    const report = await rest<UsageReport>({ url: restarted.url }, 'GET', '/usage?group_by=model');
    expectToMatchContract(report, '/usage', 'get');
    expect(report.body.totals).toMatchObject({ requests: 2, succeeded: 1, failed: 0 });
    expect(report.body.rows).toEqual([expect.objectContaining({ group: CHAT_MODEL, requests: 2, succeeded: 1, failed: 0 })]);
    await stop(restarted.server);
  });
  it('refuses a second process on the same DATA_DIR (the ledger has one owner), and starts again once the owner is SIGKILLed', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-owner-data-'));
    const { server: owner, url } = await start(dataDir);
    const intruder = spawnServer({ DATA_DIR: dataDir, MODEL_CATALOG: catalogFile, LOG_LEVEL: 'info' });
    servers.push(intruder);
    expect(await intruder.exited).toBe(1);
    expect(intruder.output()).toContain('is in use by another process');
    expect(intruder.output()).not.toMatch(/\n\s+at /); // a message, not a stack trace
    // The owner never noticed: it still answers, and its rows are all there.
    const answer = await postGenerate(url, 'after the intruder');
    expect(answer?.status).toBe(200);
    owner.child.kill('SIGKILL');
    expect(await owner.exited).toBe('SIGKILL');
    const { url: again } = await start(dataDir); // the operating system dropped the dead owner's lock
    expect((await postGenerate(again, 'the next owner'))?.status).toBe(200);
    expect(readLedgerFile(dataDir).map((row) => row.prompt)).toEqual(expect.arrayContaining(['after the intruder', 'the next owner']));
  });
});
