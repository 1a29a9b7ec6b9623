/**
 * npm run bench:ledger [-- --quick]
 *
 * Decides whether the ledger is fast enough on its embedded store (the speed floors of issue 11),
 * on a temporary SQLite file made by the real migrations:
 * - fill: 1,000,000 finished generations over one year (2024), written in big transactions
 *   straight through better-sqlite3 (the fill is set-up, not a figure under test);
 * - reads, through LedgerRepository: `usage` for one month (each grouping), a first and a deep
 *   page of `generations` (limit 50), and pages filtered by caller, by model and by status;
 *   floors: usage < 200 ms, a page < 20 ms (median of the runs after a warm-up; max printed too);
 * - writes: a stream of single generations (start, then finish a little later, up to 200 in
 *   flight) through the group-commit writer, while a setImmediate heartbeat measures every gap
 *   between two turns of the event loop; floor: the longest gap ≤ 1 ms. The longest synchronous
 *   SQLite statement is printed beside it.
 * `--quick` fills 100,000 rows and writes a tenth as much, for a smoke run.
 * Exits 0 when every floor passes, 1 otherwise.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { openDatabase } from '../src/storage/database';
import { newGenerationId } from '../src/storage/generation-id';
import { LedgerRepository } from '../src/storage/ledger-repository';
import type { GenerationStart, LedgerFilter } from '../src/storage/ledger-types';

const quick = process.argv.includes('--quick');
const ROWS = quick ? 100_000 : 1_000_000;
const STREAMED_GENERATIONS = quick ? 2_000 : 20_000;
const MAX_IN_FLIGHT = 200;
const YEAR_START = Date.UTC(2024, 0, 1);
const YEAR_END = Date.UTC(2025, 0, 1);
const JUNE = { since: new Date(Date.UTC(2024, 5, 1)), until: new Date(Date.UTC(2024, 6, 1)) };
const RUNS = 7;

const CALLERS = Array.from({ length: 50 }, (_, index) => `key-${String(index).padStart(2, '0')}`);
const MODELS = ['gpt-4o-mini', 'gpt-4o', 'o3-mini', 'llama-3.1-8b', 'llama-3.1-70b', 'qwen2.5-7b', 'mistral-7b', 'phi-3-mini'];
const SOURCES = ['generate', 'generate', 'generate', 'batch', 'stream', 'openai', 'evaluation'] as const;

interface Floor {
  readonly label: string;
  readonly value: number;
  readonly limit: number;
  readonly unit: string;
}
const floors: Floor[] = [];

/** A seeded generator, so every run fills the same ledger. */
function mulberry32(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

function fill(file: string): void {
  const Sqlite = require('better-sqlite3') as typeof BetterSqlite3;
  const sqlite = new Sqlite(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  const insert = sqlite.prepare(
    `insert into generations (id, request_id, caller, team, source, model_id, provider, upstream_model, status, error,
       finish_reason, prompt, text, prompt_name, prompt_version, evaluation_id, max_tokens, temperature, top_p,
       input_tokens, output_tokens, cost_units, latency_ms, attempts, created_at, finished_at)
     values (?, ?, ?, ?, ?, ?, 'vllm', ?, ?, ?, ?, ?, ?, null, null, null, 100, 0.7, 1, ?, ?, ?, ?, '[]', ?, ?)`,
  );
  const random = mulberry32(11);
  const insertChunk = sqlite.transaction((from: number, to: number) => {
    for (let index = from; index < to; index++) {
      const createdAt = YEAR_START + Math.floor(((YEAR_END - YEAR_START) * index) / ROWS);
      const callerIndex = Math.floor(random() ** 2 * CALLERS.length); // a few busy keys, many quiet ones
      const model = MODELS[Math.floor(random() ** 1.5 * MODELS.length)]!;
      const roll = random();
      const status = roll < 0.9 ? 'succeeded' : roll < 0.98 ? 'failed' : 'cancelled';
      const inputTokens = 10 + Math.floor(random() * 2000);
      const outputTokens = status === 'succeeded' ? 1 + Math.floor(random() * 800) : 0;
      insert.run(
        newGenerationId(new Date(createdAt)),
        `req-${index}`,
        CALLERS[callerIndex],
        callerIndex % 10 === 9 ? null : `team-${callerIndex % 7}`,
        SOURCES[index % SOURCES.length],
        model,
        `${model}-upstream`,
        status,
        status === 'succeeded' ? null : 'generation_error',
        status === 'succeeded' ? 'stop' : null,
        'Summarise the following ticket in one sentence.',
        status === 'succeeded' ? 'The customer cannot log in after the password reset.' : null,
        inputTokens,
        outputTokens,
        inputTokens * 1500 + outputTokens * 6000, // 0.15 / 0.60 USD per million tokens, in 1e-10 USD
        50 + Math.floor(random() * 3000),
        createdAt,
        createdAt + 500,
      );
    }
  });
  const chunk = 50_000;
  for (let from = 0; from < ROWS; from += chunk) insertChunk(from, Math.min(ROWS, from + chunk));
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
  sqlite.close();
}

async function timed(label: string, run: () => Promise<unknown>, limitMs: number): Promise<void> {
  await run(); // warm-up: statement caches, pages in memory
  const durations: number[] = [];
  for (let index = 0; index < RUNS; index++) {
    const startedAt = performance.now();
    await run();
    durations.push(performance.now() - startedAt);
  }
  durations.sort((left, right) => left - right);
  const median = durations[Math.floor(RUNS / 2)]!;
  console.log(`  ${label.padEnd(52)} median ${median.toFixed(2).padStart(8)} ms   max ${durations.at(-1)!.toFixed(2).padStart(8)} ms`);
  floors.push({ label, value: median, limit: limitMs, unit: 'ms' });
}

/** Times every better-sqlite3 statement (prepare and step are synchronous: each is a block of the event loop). */
function watchStatements(): { longestMs: () => number; stop: () => void } {
  const Sqlite = require('better-sqlite3') as typeof BetterSqlite3;
  const probe = new Sqlite(':memory:');
  const statementPrototype = Object.getPrototypeOf(probe.prepare('select 1')) as { run: (...args: unknown[]) => unknown };
  probe.close();
  const databasePrototype = Sqlite.prototype as unknown as { prepare: (...args: unknown[]) => unknown };
  const originalRun = statementPrototype.run;
  const originalPrepare = databasePrototype.prepare;
  let longest = 0;
  const timing = (original: (...args: unknown[]) => unknown) =>
    function (this: unknown, ...args: unknown[]): unknown {
      const startedAt = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        longest = Math.max(longest, performance.now() - startedAt);
      }
    };
  statementPrototype.run = timing(originalRun);
  databasePrototype.prepare = timing(originalPrepare);
  return {
    longestMs: () => longest,
    stop: () => {
      statementPrototype.run = originalRun;
      databasePrototype.prepare = originalPrepare;
    },
  };
}

function generationStart(index: number): GenerationStart {
  const createdAt = new Date();
  return {
    id: newGenerationId(createdAt),
    requestId: `bench-${index}`,
    caller: CALLERS[index % CALLERS.length]!,
    team: `team-${index % 7}`,
    source: 'generate',
    modelId: MODELS[index % MODELS.length]!,
    provider: 'vllm',
    upstreamModel: 'bench-upstream',
    prompt: 'Summarise the following ticket in one sentence.',
    promptRef: null,
    evaluationId: null,
    parameters: { maxTokens: 100, temperature: 0.7, topP: 1 },
    createdAt,
  };
}

/** A stream of single generations through the group commit, with a heartbeat measuring every turn of the event loop. */
async function streamWrites(ledger: LedgerRepository): Promise<void> {
  const statements = watchStatements();
  let lastBeat = performance.now();
  let longestGap = 0;
  const gaps: number[] = [];
  let beating = true;
  const beat = (): void => {
    const now = performance.now();
    const gap = now - lastBeat;
    gaps.push(gap);
    longestGap = Math.max(longestGap, gap);
    lastBeat = now;
    if (beating) setImmediate(beat);
  };
  setImmediate(beat);

  const startedAt = performance.now();
  let launched = 0;
  let inFlight = 0;
  await new Promise<void>((resolve, reject) => {
    const launch = (): void => {
      if (launched >= STREAMED_GENERATIONS) {
        if (inFlight === 0) resolve();
        return;
      }
      // One new generation per turn of the loop, like requests arriving one by one.
      if (inFlight < MAX_IN_FLIGHT) {
        const index = launched++;
        inFlight += 1;
        const start = generationStart(index);
        ledger
          .start(start)
          .then(() => new Promise((wait) => setTimeout(wait, index % 3)))
          .then(() =>
            ledger.finish(start.id, {
              status: 'succeeded',
              error: null,
              finishReason: 'stop',
              text: 'The customer cannot log in after the password reset.',
              inputTokens: 40,
              outputTokens: 12,
              costUsd: 0.0000132,
              latencyMs: 3,
              attempts: [{ provider: 'vllm', upstreamModel: 'bench-upstream', error: null, latencyMs: 3 }],
            }),
          )
          .then(() => {
            inFlight -= 1;
            if (launched >= STREAMED_GENERATIONS && inFlight === 0) resolve();
          }, reject);
      }
      setImmediate(launch);
    };
    launch();
  });
  const elapsedS = (performance.now() - startedAt) / 1000;
  beating = false;
  statements.stop();
  gaps.sort((left, right) => left - right);
  const p99 = gaps[Math.floor(gaps.length * 0.99)] ?? 0;
  console.log(
    `  ${STREAMED_GENERATIONS} generations (${2 * STREAMED_GENERATIONS} writes) in ${elapsedS.toFixed(1)} s: ${(STREAMED_GENERATIONS / elapsedS).toFixed(0)} generations/s`,
  );
  console.log(`  event-loop turns: ${gaps.length}, p99 gap ${p99.toFixed(3)} ms, longest gap ${longestGap.toFixed(3)} ms`);
  console.log(`  longest synchronous SQLite statement (prepare or step): ${statements.longestMs().toFixed(3)} ms`);
  floors.push({ label: 'longest event-loop block during group-commit writes', value: longestGap, limit: 1, unit: 'ms' });
}

async function main(): Promise<void> {
  const benchStartedAt = performance.now();
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-bench-ledger-'));
  const file = path.join(directory, 'ledger.db');
  try {
    console.log(`LLMOP ledger bench (SQLite, ${ROWS.toLocaleString('en-US')} rows${quick ? ', --quick' : ''})`);
    const migrated = await openDatabase({ sqliteFile: file });
    await migrated.close();
    const fillStartedAt = performance.now();
    fill(file);
    const fillSeconds = (performance.now() - fillStartedAt) / 1000;
    console.log(`fill: ${fillSeconds.toFixed(1)} s, ${(statSync(file).size / 1e6).toFixed(0)} MB`);

    const database = await openDatabase({ sqliteFile: file });
    const ledger = new LedgerRepository(database, { recordContent: true });

    console.log('usage, June 2024 (about a twelfth of the rows):');
    for (const groupBy of ['model', 'caller', 'team', 'day'] as const)
      await timed(`usage by ${groupBy}`, () => ledger.usage(JUNE, groupBy), 200);
    await timed('usage by day, one caller (what a member sees)', () => ledger.usage({ ...JUNE, caller: 'key-03' }, 'day'), 200);
    const wholeYear = performance.now();
    await ledger.usage({}, 'model');
    console.log(
      `  (no floor) usage by model over all ${ROWS.toLocaleString('en-US')} rows: ${(performance.now() - wholeYear).toFixed(0)} ms`,
    );

    console.log('a page of generations (limit 50):');
    const page = (filter: LedgerFilter, cursor?: string) => () => ledger.list(filter, { limit: 50, cursor });
    await timed('first page', page({}), 20);
    let deepCursor: string | undefined;
    for (let index = 0; index < 100; index++)
      deepCursor = (await ledger.list({}, { limit: 50, cursor: deepCursor })).nextCursor ?? undefined;
    await timed('page 101 (by cursor)', page({}, deepCursor), 20);
    await timed('first page, one caller', page({ caller: 'key-42' }), 20);
    await timed('first page, one model', page({ modelId: 'phi-3-mini' }), 20);
    await timed('first page, cancelled only', page({ status: 'cancelled' }), 20);
    await timed('first page, one caller in June', page({ caller: 'key-42', ...JUNE }), 20);

    console.log('writes through the group commit:');
    await streamWrites(ledger);
    await ledger.close();
    await database.close();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }

  console.log('floors:');
  let failed = 0;
  for (const floor of floors) {
    const pass = floor.value < floor.limit || (floor.unit === 'ms' && floor.limit === 1 && floor.value <= floor.limit);
    if (!pass) failed += 1;
    console.log(
      `  ${pass ? 'PASS' : 'FAIL'}  ${floor.label.padEnd(52)} ${floor.value.toFixed(2)} ${floor.unit} (limit ${floor.limit} ${floor.unit})`,
    );
  }
  console.log(
    `bench ran ${((performance.now() - benchStartedAt) / 1000).toFixed(0)} s; ${failed === 0 ? 'every floor passes' : `${failed} floor(s) fail`}`,
  );
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
