import { execFile } from 'node:child_process';
import path from 'node:path';
import { openDatabase, type DatabaseSettings } from '../../src/storage/database';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import { type LedgerStore, postgresStore, sqliteStore } from './ledger-stores';

/*
 * The ledger as a process meets it: what opening a store loads, and what survives a kill.
 * Each case runs the TypeScript sources in a fresh Node process (compiled on the fly by swc).
 */

const projectRoot = path.resolve(__dirname, '../..');
const source = (file: string) => JSON.stringify(path.join(projectRoot, 'src/storage', file));

// Teaches the child's require() to load .ts files, as jest does here.
const TYPESCRIPT_LOADER = `
  const swc = require('@swc/core');
  const fs = require('node:fs');
  require.extensions['.ts'] = (module, filename) => {
    const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
      filename,
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'commonjs' },
    });
    module._compile(code, filename);
  };
`;

interface ChildResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
}

function runChild(script: string, settings: DatabaseSettings): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-e', TYPESCRIPT_LOADER + script],
      { cwd: projectRoot, env: { PATH: process.env.PATH ?? '', LEDGER_SETTINGS: JSON.stringify(settings) }, timeout: 20_000 },
      (error, stdout, stderr) => {
        const failure = error as (Error & { signal?: NodeJS.Signals; code?: number }) | null;
        resolve({ stdout, stderr, signal: failure?.signal ?? null, code: typeof failure?.code === 'number' ? failure.code : 0 });
      },
    );
  });
}

describe.each([
  ['SQLite', sqliteStore],
  ['PostgreSQL', postgresStore],
] as const)('a process using the ledger on %s', (name, makeStore) => {
  const store: LedgerStore = makeStore();
  beforeAll(() => store.setUp());
  afterAll(() => store.tearDown());

  it(`loads only the ${name} driver`, async () => {
    const settings = await store.freshDatabase();
    const result = await runChild(
      `
      const { openDatabase } = require(${source('database.ts')});
      openDatabase(JSON.parse(process.env.LEDGER_SETTINGS)).then(async (database) => {
        const loaded = Object.keys(require.cache);
        const drivers = ['pg', 'better-sqlite3'].filter((name) => loaded.some((file) => file.includes('/node_modules/' + name + '/')));
        process.stdout.write(JSON.stringify({ kind: database.kind, drivers }));
        await database.close();
      });`,
      settings,
    );
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual(
      name === 'SQLite' ? { kind: 'sqlite', drivers: ['better-sqlite3'] } : { kind: 'postgres', drivers: ['pg'] },
    );
  });

  it('keeps a generation whose finish resolved even when the process is killed at once, and closes the one in flight at the next start', async () => {
    const settings = await store.freshDatabase();
    const result = await runChild(
      `
      const { openDatabase } = require(${source('database.ts')});
      const { LedgerRepository } = require(${source('ledger-repository.ts')});
      const { newGenerationId } = require(${source('generation-id.ts')});
      const generation = (createdAt) => ({
        id: newGenerationId(createdAt), requestId: 'req-1', caller: 'alice', team: null, source: 'generate',
        modelId: 'tiny-chat', provider: 'vllm', upstreamModel: 'tiny-chat-v1', prompt: 'hi', promptRef: null,
        evaluationId: null, parameters: { maxTokens: 10, temperature: 0, topP: 1 }, createdAt,
      });
      openDatabase(JSON.parse(process.env.LEDGER_SETTINGS)).then(async (database) => {
        const ledger = new LedgerRepository(database, { recordContent: true });
        const inFlight = generation(new Date(Date.now() - 1000));
        await ledger.start(inFlight);
        const answered = generation(new Date(Date.now() - 500));
        await ledger.start(answered);
        await ledger.finish(answered.id, {
          status: 'succeeded', error: null, finishReason: 'stop', text: 'hello', inputTokens: 1, outputTokens: 1,
          costUsd: 0.000001, latencyMs: 5, attempts: [],
        });
        // The gateway would answer 200 here; the process dies before anything else runs.
        process.stdout.write(JSON.stringify({ answered: answered.id, inFlight: inFlight.id }));
        process.kill(process.pid, 'SIGKILL');
      });`,
      settings,
    );
    expect(result.stderr).toBe('');
    expect(result.signal).toBe('SIGKILL');
    const ids = JSON.parse(result.stdout) as { answered: string; inFlight: string };

    const database = await openDatabase(settings);
    try {
      const ledger = new LedgerRepository(database, { recordContent: true });
      expect(await ledger.get(ids.answered)).toMatchObject({ status: 'succeeded', text: 'hello', costUsd: 0.000001 });
      expect(await ledger.get(ids.inFlight)).toBeUndefined();
      expect(await ledger.closeInterrupted()).toBe(1);
      expect(await ledger.get(ids.inFlight)).toMatchObject({ status: 'cancelled', error: 'interrupted' });
    } finally {
      await database.close();
    }
  });
});
