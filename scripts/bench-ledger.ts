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
 * - writes: generations one by one (start, then finish 0-2 ms later) through the group commit,
 *   first a steady 1,000 per second (judged), then flat out with up to 200 in flight (printed for
 *   information: it saturates both cores). Floor, on the steady stream: the longest
 *   synchronous step a write takes on the main thread (`start`/`finish` themselves and each group
 *   commit: compile the batch, SQLite's commit) ≤ 1 ms, counting what the
 *   ledger's code holds the loop for: GC pauses within a step are taken out, and steps during which
 *   the main thread was switched out (context switches in /proc/thread-self/status: on a small
 *   machine the checkpoint thread competes for the cores) are left out of the floor;
 *   the raw wall-clock figures are printed too. Printed beside it: each write's time
 *   until committed (what a request waits) and, for the whole process, the gaps between turns of
 *   the event loop (a setImmediate heartbeat) and the GC pauses. A warm-up of 2,000 generations
 *   precedes the measured phases.
 * `--quick` fills 100,000 rows and writes a tenth as much, for a smoke run.
 * Exits 0 when every floor passes, 1 otherwise.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHistogram, PerformanceObserver } from 'node:perf_hooks';
import type BetterSqlite3 from 'better-sqlite3';
import { type LedgerDatabase, openDatabase } from '../src/storage/database';
import { newGenerationId } from '../src/storage/generation-id';
import { LedgerRepository } from '../src/storage/ledger-repository';
import { GroupCommitWriter } from '../src/storage/group-commit-writer';
import type { GenerationOutcome, GenerationStart, LedgerFilter } from '../src/storage/ledger-types';

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
  /** `value <= limit` passes ("at most"), otherwise `value < limit` ("under"). */
  readonly inclusive: boolean;
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
  floors.push({ label, value: median, limit: limitMs, inclusive: false });
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

interface WritePhase {
  readonly label: string;
  readonly generations: number;
  /** New generations per second; Infinity: as fast as the ledger commits, MAX_IN_FLIGHT at a time. */
  readonly ratePerSecond: number;
  /** False for the warm-up (the JIT compiles the write path), which is neither printed nor judged. */
  readonly measured: boolean;
  /** Whether the floor applies (the steady stream); the flat-out phase is printed for information. */
  readonly judged: boolean;
}

interface WriteStep {
  readonly startedAt: number;
  readonly durationMs: number;
  /** The main thread was switched out during the step (its wall time is partly the kernel's or another thread's). */
  readonly preempted: boolean;
}

// Linux counts each time a thread leaves the CPU: preempted (nonvoluntary), or waiting in the
// kernel (voluntary: a page fault's I/O, an allocator lock shared with the other threads). Elsewhere we cannot tell.
const PREEMPTIONS_FILE = '/proc/thread-self/status';
const canCountPreemptions = existsSync(PREEMPTIONS_FILE);
function preemptionsOfThisThread(): number {
  if (!canCountPreemptions) return 0;
  const status = readFileSync(PREEMPTIONS_FILE, 'utf8');
  const count = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)$`, 'm').exec(status)?.[1] ?? 0);
  return count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches');
}

/**
 * Measures the main thread's share of every write: the synchronous part of `start`/`finish` (build
 * the row, queue it, and commit it when it is the first write of an idle turn) and of each group
 * commit (compile the batch, SQLite's commit).
 * The commit step is a private method of GroupCommitWriter; wrapping it here keeps the product free
 * of bench hooks.
 */
function watchWriteSteps(): { steps: WriteStep[]; stop: () => void; time: <T>(step: () => T) => T } {
  const prototype = GroupCommitWriter.prototype as unknown as { commitNextBatch: () => Promise<void> };
  const original = prototype.commitNextBatch;
  const steps: WriteStep[] = [];
  const time = <T>(step: () => T): T => {
    const preemptionsBefore = preemptionsOfThisThread();
    const startedAt = performance.now();
    try {
      return step();
    } finally {
      const durationMs = performance.now() - startedAt;
      steps.push({ startedAt, durationMs, preempted: preemptionsOfThisThread() !== preemptionsBefore });
    }
  };
  prototype.commitNextBatch = function (this: unknown) {
    return time(() => original.call(this));
  };
  return { steps, stop: () => (prototype.commitNextBatch = original), time };
}

/** How much of [startedAt, startedAt + durationMs] the garbage collector held the thread. */
function gcWithin(pauses: readonly { startTime: number; duration: number }[], startedAt: number, durationMs: number): number {
  let overlap = 0;
  for (const pause of pauses) {
    overlap += Math.max(0, Math.min(startedAt + durationMs, pause.startTime + pause.duration) - Math.max(startedAt, pause.startTime));
  }
  return overlap;
}

/** Generations through the ledger (start, then finish 0-2 ms later), with a heartbeat measuring every turn of the event loop. */
async function streamWrites(ledger: LedgerRepository, phase: WritePhase): Promise<void> {
  const steps = watchWriteSteps();
  const gcPauses: { startTime: number; duration: number }[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauses.push({ startTime: entry.startTime, duration: entry.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  let lastBeat = performance.now();
  // A histogram, not an array: millions of beats would make the array's own growth block the loop.
  const gaps = createHistogram();
  let beating = true;
  const beat = (): void => {
    const now = performance.now();
    gaps.record(Math.max(1, Math.round((now - lastBeat) * 1e6)));
    lastBeat = now;
    if (beating) setImmediate(beat);
  };
  setImmediate(beat);

  const latencies: number[] = [];
  const timedWrite = async (write: () => Promise<void>): Promise<void> => {
    const startedAt = performance.now();
    await steps.time(write);
    latencies.push(performance.now() - startedAt);
  };
  const startedAt = performance.now();
  let launched = 0;
  let inFlight = 0;
  let failed = false;
  const stream = new Promise<void>((resolve, reject) => {
    const launch = (): void => {
      if (failed) return;
      if (launched >= phase.generations) {
        if (inFlight === 0) resolve();
        return;
      }
      const due = Number.isFinite(phase.ratePerSecond)
        ? Math.floor(((performance.now() - startedAt) * phase.ratePerSecond) / 1000)
        : Infinity;
      // One new generation per turn of the loop at most, like requests arriving one by one.
      if (launched < due && inFlight < MAX_IN_FLIGHT) {
        const index = launched++;
        inFlight += 1;
        const start = generationStart(index);
        timedWrite(() => ledger.start(start))
          .then(() => new Promise((wait) => setTimeout(wait, index % 3)))
          .then(() => timedWrite(() => ledger.finish(start.id, BENCH_OUTCOME)))
          .then(
            () => {
              inFlight -= 1;
              if (launched >= phase.generations && inFlight === 0) resolve();
            },
            (error: unknown) => {
              failed = true;
              reject(error);
            },
          );
      }
      setImmediate(launch);
    };
    launch();
  });
  try {
    await stream;
  } finally {
    beating = false;
    steps.stop();
  }
  const elapsedS = (performance.now() - startedAt) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 20)); // GC entries arrive asynchronously
  gcObserver.disconnect();
  if (!phase.measured) return;

  const percentile = (values: number[], share: number) =>
    values[Math.min(values.length - 1, Math.floor(values.length * share))]!.toFixed(3);
  latencies.sort((left, right) => left - right);
  console.log(
    `  ${phase.label}: ${phase.generations} generations (${2 * phase.generations} writes) in ${elapsedS.toFixed(1)} s, ${(phase.generations / elapsedS).toFixed(0)} generations/s`,
  );
  const stepDurations = steps.steps.map((step) => step.durationMs).sort((left, right) => left - right);
  // What the ledger's code itself holds the loop for: steps the kernel did not interrupt, GC pauses taken out.
  const ownTimes = steps.steps
    .filter((step) => !step.preempted)
    .map((step) => step.durationMs - gcWithin(gcPauses, step.startedAt, step.durationMs));
  const longestOwn = ownTimes.reduce((longest, time) => Math.max(longest, time), 0);
  const preempted = steps.steps.filter((step) => step.preempted).length;
  console.log(
    `    synchronous write steps on the main thread: ${stepDurations.length}, p99 ${percentile(stepDurations, 0.99)} ms, ` +
      `p99.9 ${percentile(stepDurations, 0.999)} ms, longest ${stepDurations.at(-1)!.toFixed(3)} ms`,
  );
  console.log(
    `    longest step, GC pauses taken out and the ${preempted} step(s) during which the thread was switched out left out: ${longestOwn.toFixed(3)} ms` +
      (canCountPreemptions ? '' : ' (preemptions cannot be counted here: all steps kept)'),
  );
  console.log(`    write until committed: p50 ${percentile(latencies, 0.5)} ms, p99 ${percentile(latencies, 0.99)} ms`);
  console.log(
    `    (whole process) event-loop turn gaps: p99 ${(gaps.percentile(99) / 1e6).toFixed(3)} ms, longest ${(gaps.max / 1e6).toFixed(3)} ms; ` +
      `GC pauses: ${gcPauses.length}, longest ${Math.max(0, ...gcPauses.map((pause) => pause.duration)).toFixed(3)} ms`,
  );
  if (phase.judged) floors.push({ label: `longest write step, ${phase.label}`, value: longestOwn, limit: 1, inclusive: true });
}

const BENCH_OUTCOME: GenerationOutcome = {
  status: 'succeeded',
  error: null,
  finishReason: 'stop',
  text: 'The customer cannot log in after the password reset.',
  inputTokens: 40,
  outputTokens: 12,
  costUsd: 0.0000132,
  latencyMs: 3,
  attempts: [{ provider: 'vllm', upstreamModel: 'bench-upstream', error: null, latencyMs: 3 }],
};

async function main(): Promise<void> {
  const benchStartedAt = performance.now();
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-bench-ledger-'));
  const file = path.join(directory, 'ledger.db');
  let database: LedgerDatabase | undefined;
  try {
    console.log(`LLMOP ledger bench (SQLite, ${ROWS.toLocaleString('en-US')} rows${quick ? ', --quick' : ''})`);
    const migrated = await openDatabase({ sqliteFile: file });
    await migrated.close();
    const fillStartedAt = performance.now();
    fill(file);
    const fillSeconds = (performance.now() - fillStartedAt) / 1000;
    console.log(`fill: ${fillSeconds.toFixed(1)} s, ${(statSync(file).size / 1e6).toFixed(0)} MB`);

    database = await openDatabase({ sqliteFile: file });
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
    const flatOut = `flat out, ${MAX_IN_FLIGHT} in flight`;
    await streamWrites(ledger, { label: 'warm-up', generations: 2_000, ratePerSecond: Infinity, measured: false, judged: false });
    await streamWrites(ledger, {
      label: 'steady 1,000 generations/s',
      generations: STREAMED_GENERATIONS / 2,
      ratePerSecond: 1000,
      measured: true,
      judged: true,
    });
    await streamWrites(ledger, {
      label: flatOut,
      generations: STREAMED_GENERATIONS,
      ratePerSecond: Infinity,
      measured: true,
      judged: false,
    });
    await ledger.close();
  } finally {
    await database?.close();
    rmSync(directory, { recursive: true, force: true });
  }

  console.log('floors:');
  let failed = 0;
  for (const floor of floors) {
    const pass = floor.inclusive ? floor.value <= floor.limit : floor.value < floor.limit;
    if (!pass) failed += 1;
    const limit = `${floor.inclusive ? 'at most' : 'under'} ${floor.limit} ms`;
    console.log(`  ${pass ? 'PASS' : 'FAIL'}  ${floor.label.padEnd(52)} ${floor.value.toFixed(2)} ms (${limit})`);
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
