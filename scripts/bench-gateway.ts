/**
 * npm run bench:gateway [-- --quick] [-- --gateway <a built entry point: dist/src/start.js, or an older build's dist/src/main.js>] [-- --phase all|budget|evaluation|stream]
 *                        [-- --eval-delay-ms N] [-- --stream-first-chunk-ms N] [-- --stream-chunks N]
 *                        [-- --stream-interval-ms N] [-- --gateway-env NAME=value ...]
 *
 * Decides whether the request path is fast enough (the speed floors of issue 10). The gateway runs
 * as a real child process (`node <entry>`, dist/src/start.js by default, what `npm start` runs; `--gateway` measures another
 * build) in front of a lean fake OpenAI-compatible upstream in its own process; wrk (/usr/bin/wrk,
 * pinned with taskset) is the load.
 * Every figure is also printed as a ratio to the upstream baseline of the same run, so a slower or
 * busier machine moves both sides; only 200s without GraphQL `errors` count as throughput.
 *
 * Phases:
 * - baseline: the fake upstream alone, throughput at 10 connections and latency one request at a time.
 * - reference (no floor): a bare Node proxy (scripts/bench/reference-proxy.ts: node:http, one
 *   undici.request, no admission or ledger) on the gateway's core, REST generate one request at a
 *   time after a warm-up: what any Node process adds on this machine, to read the gateway's floors against.
 * - start: spawn to the first 200 from /api/v1/ready, then idle RSS (high rate limits from here on).
 * - latency: one connection, one request after another: p50/p99 of a direct upstream call, of REST
 *   `POST /api/v1/generate` and of GraphQL `generate`; the added latency is gateway minus direct.
 * - throughput: REST and GraphQL generate at 10 connections, in alternating slices so neither
 *   surface gets the warmer or the fuller process; then RSS after that generate load (40 s).
 * - health: a fresh gateway with RATE_LIMIT_DEFAULT=1000000, GET /api/v1/health for 40 s in 10 s
 *   slices: a limiter whose cost grows with the calls in its window shows as a falling rate.
 * - ledger: the same gateway (recording to SQLite in DATA_DIR) against one with LEDGER=off, REST
 *   generate at one connection, 6 rounds of one run a side (order swapped each round); the median of
 *   the rounds' differences is what recording adds.
 * - budget: two fresh gateways, ledger on (each its own SQLite in a DATA_DIR of its own) and the
 *   bench model priced (in this phase only: a priced model's generate looks up the budgets that
 *   apply, so pricing it everywhere would change the other phases), one with a global monthly
 *   budget (created through REST) and one without; REST generate at one connection, in rounds as
 *   the ledger's; the median of the rounds' differences is what holding and settling a reservation adds.
 * - flood: a fresh gateway at the default limits, one key flooding REST generate for 30 s in 5 s
 *   slices: refusals per second must stay steady and RSS flat.
 * - evaluation (issue 14; scripts/bench/evaluation-phase.ts): a fresh gateway (ledger on, its own
 *   DATA_DIR, EVAL_CONCURRENCY left at its default of 4), a prompt and a dataset of 1,000 cases, so a
 *   run of 1 prompt x 1 model is 1,000 cells. The run's model sits on a second fake upstream (same core)
 *   that answers after `--eval-delay-ms` (default 100 ms, a fast real model; a timer, no CPU), so a run
 *   lasts through a round. REST generate of the bench model at one connection, alternating rounds on
 *   that one gateway: with a run going (started for the round, replaced if it ends, cancelled after it)
 *   and with none; the medians' ratio must stay <= 1.2. Prints the run's cells/s and the gateway's CPU.
 * - stream (issue 15; scripts/bench/stream-phase.ts): a fresh gateway (ledger on, its own DATA_DIR,
 *   authentication off, a memory probe preloaded) in front of two fake upstreams that stream as OpenAI
 *   does (`chat.completion.chunk` events, a usage chunk for `stream_options.include_usage`,
 *   `data: [DONE]`), the first word `--stream-first-chunk-ms` after the request (default 10).
 *   Time to first token, after 3,000 calls a gateway surface 10 at once (V8 optimises the path) and 100
 *   sequential ones, one call at a time, 300 calls a surface alternating: straight to the upstream,
 *   through POST /api/v1/generate/stream (first `event: delta`) and through POST /v1/chat/completions
 *   with `stream: true` when the build has that route (skipped, and said so, when it answers 404), and
 *   through the bare Node proxy of the reference (no floor);
 *   p50/p99 of each and the added p50 (split at the status line), floor <= 1 ms; beside it, the same
 *   gateway's non-streaming REST generate against the upstream's JSON answer. Then 7 rounds of 200
 *   concurrent REST streams of `--stream-chunks` words (default 300) `--stream-interval-ms` apart
 *   (default 5), each endpoint allowed 200 upstream calls at once: after each round the gateway's RSS
 *   (/proc/<pid>/status), then, after a full GC (a probe preloaded with --require,
 *   scripts/bench/memory-probe.ts), its RSS and heap used. Round 1 warms up; floors: RSS after GC, the
 *   median of rounds 5-7 against the median of rounds 2-4, grows <= 25 MiB (on a flat heap, single
 *   readings move by up to 25 MiB either way as V8 sizes its heap and frees Buffers when it chooses;
 *   a leak moves them all), and heap used after GC, round 2 to 7, <= 2 MiB (the fine bound: 2 KiB a
 *   stream). Each round's line shows V8's committed heap and external memory beside RSS. The phase
 *   takes about a minute. Prints chunks/s delivered and the gateway's CPU. In
 *   this phase the fake upstreams run on core 1 with this script (the client), the gateway alone on
 *   core 0. With `--quick`: 30 calls a surface, 4 rounds, a tenth of the words.
 * `--phase budget`, `--phase evaluation` or `--phase stream` runs only that phase (no upstream baseline, no other floor);
 * the default, `all`, runs every phase.
 * Each measurement follows a warm-up: 2 s on a process that has served the same calls, 15 s of load on a
 * fresh one (30 s for the main gateway, REST and GraphQL alternating), so V8 has optimised the hot path;
 * the warm-up's own rates are printed, so a slower start shows too.
 *
 * Cores: the gateway and the upstream share core 0; wrk (and this script, idle during loads) core 1,
 * so the load generator never takes CPU from what it measures and runs stay comparable (the stream
 * phase, whose client is this script, moves its upstreams to core 1 too: on core 0 the gateway, and the reference proxy between its own calls).
 * `--quick` divides every duration by 10 (at least 1 s each) for a smoke run; its figures are noise.
 * Exits 0 when every floor passes, 1 otherwise or when the bench itself cannot run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, wrkPath, type LoadResult, type LoadTarget } from './bench/load-generator';
import { runEvaluationPhase } from './bench/evaluation-phase';
import { runStreamPhase } from './bench/stream-phase';
import { cpuSeconds, sendRequest, startFakeUpstream, startGateway, type RunningGateway } from './bench/processes';
import {
  describeOutcome,
  formatCount,
  formatMiB,
  formatMs,
  formatPercent,
  formatSigned,
  heading,
  line,
  printFloors,
  refusalRate,
  relativeChange,
  successRate,
  unexpectedOutcomes,
  type Floor,
} from './bench/report';

const serverCore = 0;
const loadCore = 1;
const loadConnections = 10;
const benchKey = 'llmop-bench-key-0001';
const modelId = 'bench-model';
const prompt = 'Say hello to the bench';
const maxTokens = 16;

/** The issue's durations, in seconds. */
const fullDurations = {
  /** Before each measurement on a process that has already served the same kind of call. */
  warmUp: 2,
  /**
   * A freshly started gateway, before its first figure: V8 runs the first thousands of calls on its
   * interpreter and baseline code, and optimises them while the core is busy with the load. REST generate
   * at 10 connections on the 2-core machine: about a quarter of its steady rate in the first 2 s after
   * start, half after 6 s, steady after about 10 s. (5 s left the first slice of the health and flood
   * phases 18% and 58% slower than the last: warm-up, not a limiter slowing down.)
   */
  freshWarmUp: 15,
  baseline: 10,
  latency: 8,
  /** Four slices alternate REST and GraphQL: 40 s of generate load. */
  generateSlice: 10,
  healthSlice: 10,
  floodSlice: 5,
};
type Durations = typeof fullDurations;
const generateSlices = 4;
const healthSlices = 4;
const floodSlices = 6;
const idleSettleMs = 1000;

const floorsOfIssue = {
  startToReadyMs: 1000,
  addedP50Ms: 0.8,
  addedP99Ms: 2,
  throughputShareOfUpstream: 0.05,
  restVersusGraphql: 0.15,
  healthDrift: 0.1,
  floodDrift: 0.1,
  floodRssGrowthMiB: 20,
  idleRssMiB: 120,
  loadedRssMiB: 300,
  /** Issue 11: what recording each generation may add. */
  ledgerAddedP50Ms: 0.1,
  /** Issue 12: what a reservation on one applying budget adds to a generate, against none applying. */
  budgetAddedP50Ms: 0.2,
};
/** On/off pairs for the ledger's cost; the median of the pairs' differences counts. */
const ledgerRounds = 6;
/** With/without pairs for a budget's cost; the median of the pairs' differences counts. */
const budgetRounds = 6;
/** With/without pairs for an evaluation run's cost to interactive traffic; the median of each side counts. */
const evaluationRounds = 3;
/** The evaluation model's upstream answers after this long (ms) unless --eval-delay-ms says otherwise. */
const defaultEvaluationDelayMs = 100;
/** The stream phase's upstreams, unless --stream-first-chunk-ms, --stream-chunks and --stream-interval-ms say otherwise. */
const defaultStreamSettings = { firstChunkDelayMs: 10, chunks: 300, chunkIntervalMs: 5 };
/** The bench model's price in the budget phase (USD per million tokens): a budget applies only to a priced model. */
const benchPricing = { input_per_million: 1, output_per_million: 2 };
/** USD: far above what the phase spends, within what the ledger counts exactly (2^53 units of 1e-10 USD). */
const benchBudgetLimitUsd = 100_000;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Rate limits high enough that no generate or health call of the bench is refused. */
const highLimits = {
  RATE_LIMIT_GENERATE: '1000000',
  RATE_LIMIT_GENERATE_BATCH: '1000000',
  RATE_LIMIT_DEFAULT: '1000000',
};

const generateDocument = `mutation Generate($prompt: String!, $model_id: String!, $max_tokens: Int) {
  generate(prompt: $prompt, model_id: $model_id, max_tokens: $max_tokens) {
    text
    model_id
    prompt
    parameters { max_tokens temperature top_p }
    metrics { latency_ms input_tokens output_tokens total_tokens }
    metadata {
      finish_reason provider upstream_model request_id upstream_request_id token_source
      cost_usd { input output total }
    }
    timestamp
  }
}`;

/** One side of an on/off comparison: its gateway and how the report names it. */
interface ComparedGateway {
  readonly gateway: RunningGateway;
  readonly latencyLabel: string;
  readonly loadLabel: string;
  readonly problemTag: string;
}

const phases = ['all', 'budget', 'evaluation', 'stream'] as const;
type Phase = (typeof phases)[number];

interface Options {
  readonly entry: string;
  readonly quick: boolean;
  readonly durations: Durations;
  readonly phase: Phase;
  readonly evaluationDelayMs: number;
  readonly stream: typeof defaultStreamSettings;
  /** `--gateway-env NAME=value` (repeatable): settings every gateway of the run gets, e.g. to measure with tracing on. */
  readonly gatewayEnv: Readonly<Record<string, string>>;
}

/** A whole number >= `minimum` from option `name`, or an error that says which option was wrong. */
function wholeNumber(name: string, text: string | undefined, minimum: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) throw new Error(`--${name} must be a whole number >= ${minimum}; got ${text}`);
  return value;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      gateway: { type: 'string', default: path.resolve(__dirname, '../src/start.js') },
      phase: { type: 'string', default: 'all' },
      'eval-delay-ms': { type: 'string', default: String(defaultEvaluationDelayMs) },
      'stream-first-chunk-ms': { type: 'string', default: String(defaultStreamSettings.firstChunkDelayMs) },
      'stream-chunks': { type: 'string', default: String(defaultStreamSettings.chunks) },
      'stream-interval-ms': { type: 'string', default: String(defaultStreamSettings.chunkIntervalMs) },
      'gateway-env': { type: 'string', multiple: true, default: [] },
    },
  });
  const gatewayEnv: Record<string, string> = {};
  for (const assignment of values['gateway-env']) {
    const equals = assignment.indexOf('=');
    if (equals < 1) throw new Error(`--gateway-env takes NAME=value; got ${assignment}`);
    gatewayEnv[assignment.slice(0, equals)] = assignment.slice(equals + 1);
  }
  const phase = values.phase as Phase;
  if (!phases.includes(phase)) throw new Error(`--phase must be one of ${phases.join(', ')}; got ${values.phase}`);
  const evaluationDelayMs = wholeNumber('eval-delay-ms', values['eval-delay-ms'], 0);
  const stream = {
    firstChunkDelayMs: wholeNumber('stream-first-chunk-ms', values['stream-first-chunk-ms'], 0),
    chunks: wholeNumber('stream-chunks', values['stream-chunks'], 1),
    chunkIntervalMs: wholeNumber('stream-interval-ms', values['stream-interval-ms'], 0),
  };
  const entry = path.resolve(values.gateway);
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: build it first (npm run build), or pass --gateway <entry point>`);
  const quick = values.quick;
  const durations = Object.fromEntries(
    Object.entries(fullDurations).map(([name, seconds]) => [name, quick ? Math.max(1, Math.round(seconds / 10)) : seconds]),
  ) as Durations;
  return { entry, quick, durations, phase, evaluationDelayMs, stream, gatewayEnv };
}

const jsonHeaders = { 'content-type': 'application/json', authorization: `Bearer ${benchKey}` };

/** A one-connection run's p50 and p99 beside a direct call's: what it adds, and the line that says so. */
function againstDirect(result: LoadResult, direct: LoadResult): { readonly added: { p50: number; p99: number }; readonly text: string } {
  const quantile = (name: 'p50' | 'p99'): { added: number; text: string } => {
    const added = result.latencyMs[name] - direct.latencyMs[name];
    const times = (result.latencyMs[name] / direct.latencyMs[name]).toFixed(1);
    return { added, text: `${name} ${formatMs(result.latencyMs[name])} (x${times} direct, added ${formatSigned(added, formatMs)})` };
  };
  const [p50, p99] = [quantile('p50'), quantile('p99')];
  return { added: { p50: p50.added, p99: p99.added }, text: `${p50.text}, ${p99.text}` };
}

function restGenerate(gateway: RunningGateway): LoadTarget {
  return {
    url: `${gateway.url}/api/v1/generate`,
    method: 'POST',
    headers: jsonHeaders,
    body: JSON.stringify({ prompt, model_id: modelId, max_tokens: maxTokens }),
  };
}

function graphqlGenerate(gateway: RunningGateway): LoadTarget {
  return {
    url: `${gateway.url}/graphql`,
    method: 'POST',
    headers: jsonHeaders,
    body: JSON.stringify({ query: generateDocument, variables: { prompt, model_id: modelId, max_tokens: maxTokens } }),
  };
}

function health(gateway: RunningGateway): LoadTarget {
  return { url: `${gateway.url}/api/v1/health`, method: 'GET', headers: { authorization: `Bearer ${benchKey}` } };
}

/** The call the gateway makes for one generate, sent straight to the upstream. */
function directCall(upstreamUrl: string): LoadTarget {
  return {
    url: `${upstreamUrl}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: modelId,
      messages: [{ role: 'user', content: prompt }],
      max_tokens: maxTokens,
      temperature: 0.7,
      top_p: 1,
    }),
  };
}

/** One REST and one GraphQL generate must succeed before any figure means anything. */
async function checkGenerateWorks(gateway: RunningGateway): Promise<void> {
  for (const target of [restGenerate(gateway), graphqlGenerate(gateway)]) {
    const answer = await sendRequest(target.url, { method: target.method, headers: { ...target.headers }, body: target.body });
    if (answer.status !== 200 || answer.body.includes('"errors"') || !answer.body.includes('hello from the bench')) {
      throw new Error(`${target.method} ${target.url} does not generate (HTTP ${answer.status}): ${answer.body}\n${gateway.output()}`);
    }
  }
}

function describeBuild(entry: string): string {
  try {
    const described = execFileSync('git', ['-C', path.dirname(entry), 'describe', '--always', '--dirty'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return `git ${described.trim()}`;
  } catch {
    return 'not in a git checkout';
  }
}

function firstAndLast(values: readonly number[]): [number, number] {
  const [first] = values;
  const last = values.at(-1);
  if (first === undefined || last === undefined) throw new Error('no slices were measured');
  return [first, last];
}

/** Sums runs of the same target (slices) into one figure. */
function combined(results: readonly LoadResult[]): { succeeded: number; seconds: number; rate: number } {
  const succeeded = results.reduce((sum, result) => sum + result.succeeded, 0);
  const seconds = results.reduce((sum, result) => sum + result.seconds, 0);
  return { succeeded, seconds, rate: succeeded / seconds };
}

async function main(): Promise<number> {
  const startedAt = performance.now();
  const options = readOptions();
  const { durations } = options;
  if (!existsSync(wrkPath)) throw new Error(`${wrkPath} is missing: the bench uses wrk as its load generator`);
  // This script shares wrk's core: it only waits while wrk runs, and must not take core 0 from the servers.
  execFileSync('taskset', ['-a', '-p', '-c', String(loadCore), String(process.pid)], { stdio: 'ignore' });

  const workspace = mkdtempSync(path.join(os.tmpdir(), 'llmop-bench-'));
  // On 'exit', so that an interrupted run cleans up too.
  process.once('exit', () => rmSync(workspace, { recursive: true, force: true }));
  const modelsDirectory = path.join(workspace, 'models');
  mkdirSync(modelsDirectory);
  const floors: Floor[] = [];
  const upstream = await startFakeUpstream(serverCore);
  const running: RunningGateway[] = [];
  const load = (target: LoadTarget, connections: number, seconds: number): Promise<LoadResult> =>
    runLoad(target, { connections, seconds, core: loadCore }, workspace);

  try {
    const catalogPath = path.join(workspace, 'catalog.json');
    const writeCatalog = (file: string, pricing?: typeof benchPricing): void =>
      writeFileSync(
        file,
        JSON.stringify({
          endpoints: [{ name: 'bench', base_url: `${upstream.url}/v1` }],
          models: [{ id: modelId, provider: 'bench', context_length: 8192, ...(pricing ? { pricing } : {}) }],
        }),
      );
    writeCatalog(catalogPath);
    const baseEnvironment: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? workspace,
      HOST: '127.0.0.1',
      API_KEYS: benchKey,
      LOG_LEVEL: 'warn',
      MODEL_CATALOG: catalogPath,
      MODELS_DIR: modelsDirectory,
      DATA_DIR: workspace,
      SHUTDOWN_TIMEOUT_MS: '2000',
      ...options.gatewayEnv,
    };
    const launch = async (extra: Record<string, string>, nodeArguments: readonly string[] = []): Promise<RunningGateway> => {
      const gateway = await startGateway({
        entry: options.entry,
        core: serverCore,
        env: { ...baseEnvironment, ...extra },
        workingDirectory: workspace,
        nodeArguments,
      });
      running.push(gateway);
      return gateway;
    };
    const stop = async (gateway: RunningGateway): Promise<void> => {
      await gateway.stop();
      running.splice(running.indexOf(gateway), 1);
    };
    /** The reference (scripts/bench/reference-proxy.ts): a bare Node proxy in front of `upstreamUrl`, on the gateway's core. */
    const launchReference = async (upstreamUrl: string): Promise<RunningGateway> => {
      const reference = await startGateway({
        entry: path.join(__dirname, 'bench', 'reference-proxy.js'),
        core: serverCore,
        env: { PATH: process.env.PATH ?? '', UPSTREAM_URL: upstreamUrl },
        workingDirectory: workspace,
      });
      running.push(reference);
      return reference;
    };

    /**
     * What `subject` adds over `baseline`, two gateways already warm: REST generate at one
     * connection in rounds of one run a side, the sides' order swapped every round (AB BA AB …) so
     * that a drift over the phase weighs on both; what counts is the median of the rounds' differences
     * (a slow spell of the machine spoils one round, not one side). Then requests/s and CPU per
     * generate at 10 connections. Prints both sides and the difference; unexpected answers go to `problems`.
     */
    const compareAlternating = async (
      subject: ComparedGateway,
      baseline: ComparedGateway,
      rounds: number,
      addsLabel: string,
      problems: string[],
    ): Promise<{ readonly addedP50: number }> => {
      const sides = [subject, baseline];
      const runs = sides.map((): LoadResult[] => []);
      for (let round = 0; round < rounds; round += 1) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        for (const index of order) {
          const side = sides[index]!;
          await load(restGenerate(side.gateway), 1, durations.warmUp);
          const result = await load(restGenerate(side.gateway), 1, durations.latency);
          problems.push(...unexpectedOutcomes(result).map((problem) => `${side.problemTag}: ${problem}`));
          runs[index]!.push(result);
        }
      }
      const medianOf = (index: number, quantile: 'p50' | 'p99'): number => median(runs[index]!.map((run) => run.latencyMs[quantile]));
      const [subjectP50, subjectP99, baselineP50, baselineP99] = [
        medianOf(0, 'p50'),
        medianOf(0, 'p99'),
        medianOf(1, 'p50'),
        medianOf(1, 'p99'),
      ];
      const addedIn = (quantile: 'p50' | 'p99'): number[] =>
        runs[0]!.map((run, round) => run.latencyMs[quantile] - runs[1]![round]!.latencyMs[quantile]);
      const [addedP50, addedP99] = [median(addedIn('p50')), median(addedIn('p99'))];
      line(subject.latencyLabel, `p50 ${formatMs(subjectP50)}, p99 ${formatMs(subjectP99)} (median of ${rounds} runs)`);
      line(baseline.latencyLabel, `p50 ${formatMs(baselineP50)}, p99 ${formatMs(baselineP99)}`);
      line(
        addsLabel,
        `p50 ${formatSigned(addedP50, formatMs)}, p99 ${formatSigned(addedP99, formatMs)} (median of the rounds' differences)`,
      );
      line('', `difference of the medians: p50 ${formatSigned(subjectP50 - baselineP50, formatMs)}`);
      // Each round's pair, so that one slow round shows beside the medians.
      line(
        '',
        `p50 added, round by round: ${addedIn('p50')
          .map((added) => formatSigned(added, formatMs))
          .join(', ')}`,
      );
      for (const side of sides) {
        await load(restGenerate(side.gateway), loadConnections, durations.warmUp);
        const cpuBefore = side.gateway.cpuSeconds();
        const result = await load(restGenerate(side.gateway), loadConnections, durations.latency);
        const cpuPerGenerate = (side.gateway.cpuSeconds() - cpuBefore) / result.responses;
        problems.push(...unexpectedOutcomes(result).map((problem) => `${side.problemTag} throughput: ${problem}`));
        line(
          `${side.loadLabel}, ${loadConnections} connections`,
          `${formatCount(successRate(result))} requests/s, ${Math.round(cpuPerGenerate * 1e6)} µs gateway CPU per generate`,
        );
      }
      return { addedP50 };
    };

    /** A comparison's two floors: what the subject adds at p50, and that every run answered as expected. */
    const pushComparisonFloors = (
      latency: { readonly name: string; readonly addedP50: number; readonly limitMs: number },
      answers: { readonly name: string; readonly problems: readonly string[]; readonly limit: string },
    ): void => {
      floors.push({
        name: latency.name,
        measured: formatSigned(latency.addedP50, formatMs),
        limit: `<= ${formatMs(latency.limitMs)}`,
        pass: latency.addedP50 <= latency.limitMs,
      });
      floors.push({
        name: answers.name,
        measured: answers.problems.length === 0 ? 'no errors' : answers.problems.join('; '),
        limit: answers.limit,
        pass: answers.problems.length === 0,
      });
    };

    console.log('LLMOP gateway bench');
    line('gateway', `${options.entry} (${describeBuild(options.entry)})`);
    line('machine', `${os.cpus().length} cores, node ${process.version}; servers on core ${serverCore}, wrk on core ${loadCore}`);
    line('mode', options.quick ? 'QUICK (durations / 10): a smoke run, figures are noisy' : "full (the issue's durations)");
    line('phases', options.phase === 'all' ? 'all' : `${options.phase} only`);

    // -- what a budget reservation costs: one budget applying against none, both ledgers on (also `--phase budget`)
    const measureBudgetReservation = async (): Promise<void> => {
      heading('One budget applying vs none (ledger on, SQLite, priced model): REST generate, 1 connection');
      const pricedCatalogPath = path.join(workspace, 'catalog-priced.json');
      writeCatalog(pricedCatalogPath, benchPricing);
      // Two SQLite files: each gateway owns its ledger (a start closes the rows left in progress in its file).
      const launchPriced = (name: string): Promise<RunningGateway> => {
        const dataDirectory = path.join(workspace, name);
        mkdirSync(dataDirectory);
        return launch({ ...highLimits, MODEL_CATALOG: pricedCatalogPath, DATA_DIR: dataDirectory });
      };
      const budgeted = await launchPriced('budgeted');
      const unbudgeted = await launchPriced('unbudgeted');
      const budgetUrl = `${budgeted.url}/api/v1/budgets`;
      const created = await sendRequest(budgetUrl, {
        method: 'POST',
        headers: jsonHeaders,
        body: JSON.stringify({ scope: 'global', limit_usd: benchBudgetLimitUsd, period: 'month' }),
      });
      if (created.status !== 201) throw new Error(`POST ${budgetUrl} did not create the budget (HTTP ${created.status}): ${created.body}`);
      const budgetId = (JSON.parse(created.body) as { id: string }).id;
      const readBudget = async (): Promise<{ spent_usd: number; reserved_usd: number }> => {
        const answer = await sendRequest(`${budgetUrl}/${budgetId}`, { headers: jsonHeaders });
        if (answer.status !== 200) throw new Error(`GET ${budgetUrl}/${budgetId} answered HTTP ${answer.status}: ${answer.body}`);
        return JSON.parse(answer.body) as { spent_usd: number; reserved_usd: number };
      };
      line('budget', `${budgetId}: global, month, limit $${formatCount(benchBudgetLimitUsd)}; model priced $1 / $2 per million tokens`);
      for (const target of [budgeted, unbudgeted]) {
        await checkGenerateWorks(target);
        await load(restGenerate(target), loadConnections, durations.freshWarmUp);
      }
      const budgetProblems: string[] = [];
      const reservation = await compareAlternating(
        { gateway: budgeted, latencyLabel: 'one budget applying', loadLabel: 'one budget', problemTag: 'budget budget' },
        { gateway: unbudgeted, latencyLabel: 'no budget', loadLabel: 'no budget', problemTag: 'budget none' },
        budgetRounds,
        'the reservation adds',
        budgetProblems,
      );
      // The budget must really have applied: spend counted, and nothing held once the load is over.
      const spent = await readBudget();
      line('budget after the runs', `spent $${spent.spent_usd}, held $${spent.reserved_usd}`);
      if (!(spent.spent_usd > 0)) budgetProblems.push(`the budget counted no spend ($${spent.spent_usd}): it did not apply`);
      pushComparisonFloors(
        { name: 'budget reservation added latency p50 (SQLite)', addedP50: reservation.addedP50, limitMs: floorsOfIssue.budgetAddedP50Ms },
        {
          name: 'budget runs answer all 200, budget applied',
          problems: budgetProblems,
          limit: 'no non-200 or socket error; spend counted',
        },
      );
      await stop(unbudgeted);
      await stop(budgeted);
    };

    if (options.phase === 'all') {
      // -- baseline
      heading(`Baseline: the fake upstream alone`);
      const direct = directCall(upstream.url);
      await load(direct, loadConnections, durations.warmUp);
      const upstreamCpuBefore = cpuSeconds(upstream.pid);
      const baseline = await load(direct, loadConnections, durations.baseline);
      const upstreamCpuPerRequest = (cpuSeconds(upstream.pid) - upstreamCpuBefore) / baseline.responses;
      const baselineRate = successRate(baseline);
      line(
        `throughput, ${loadConnections} connections`,
        `${formatCount(baselineRate)} requests/s, ${Math.round(upstreamCpuPerRequest * 1e6)} µs CPU per request`,
      );
      line('', describeOutcome(baseline));
      await load(direct, 1, durations.warmUp);
      const directLatency = await load(direct, 1, durations.latency);
      line('latency, 1 connection', `p50 ${formatMs(directLatency.latencyMs.p50)}, p99 ${formatMs(directLatency.latencyMs.p99)}`);
      line('', describeOutcome(directLatency));
      const baselineProblems = [...unexpectedOutcomes(baseline), ...unexpectedOutcomes(directLatency)];
      if (baselineProblems.length > 0) throw new Error(`the fake upstream failed under load: ${baselineProblems.join(', ')}`);

      // -- reference: what a bare Node proxy adds on this machine, no floor (the gateway's floors read against it)
      heading('Reference: a bare Node proxy in front of the same upstream (node:http + undici.request; no floor)');
      const reference = await launchReference(upstream.url);
      const referenceTarget = restGenerate(reference);
      await load(referenceTarget, loadConnections, Math.max(1, Math.round(durations.freshWarmUp / 3)));
      await load(referenceTarget, 1, durations.warmUp);
      const referenceLatency = await load(referenceTarget, 1, durations.latency);
      line('generate, 1 connection', againstDirect(referenceLatency, directLatency).text);
      line('', describeOutcome(referenceLatency));
      const referenceProblems = unexpectedOutcomes(referenceLatency);
      if (referenceProblems.length > 0)
        throw new Error(`the reference proxy failed: ${referenceProblems.join(', ')}\n${reference.output()}`);
      await stop(reference);

      // -- start
      heading('Gateway with high rate limits: start, latency, throughput, RSS');
      const gateway = await launch(highLimits);
      line('start to ready', formatMs(gateway.startToReadyMs));
      await new Promise((resolve) => setTimeout(resolve, idleSettleMs));
      const idleRss = gateway.residentMiB();
      line('idle RSS', formatMiB(idleRss));
      floors.push({
        name: 'idle RSS',
        measured: formatMiB(idleRss),
        limit: `<= ${formatMiB(floorsOfIssue.idleRssMiB)}`,
        pass: idleRss <= floorsOfIssue.idleRssMiB,
      });
      await checkGenerateWorks(gateway);
      const generateProblems: string[] = [];
      const rest = { name: 'REST', target: restGenerate(gateway), slices: [] as LoadResult[] };
      const graphql = { name: 'GraphQL', target: graphqlGenerate(gateway), slices: [] as LoadResult[] };
      const surfaces = [rest, graphql];
      // A fresh process: both surfaces under load first, alternating, so V8 has optimised the path
      // both take (and neither gets the warmer process) before any figure.
      const warmUpRounds = 3;
      const warmUpSlice = Math.max(1, Math.round(durations.freshWarmUp / warmUpRounds));
      const warmUpRates = new Map(surfaces.map((surface) => [surface, [] as number[]]));
      for (let round = 0; round < warmUpRounds; round += 1) {
        for (const surface of surfaces) {
          const warmUp = await load(surface.target, loadConnections, warmUpSlice);
          generateProblems.push(...unexpectedOutcomes(warmUp).map((problem) => `${surface.name} warm-up: ${problem}`));
          warmUpRates.get(surface)!.push(successRate(warmUp));
        }
      }
      for (const [surface, rates] of warmUpRates) {
        line(
          `${surface.name} warm-up, ${loadConnections} connections`,
          `${rates.map(formatCount).join(' -> ')} requests/s (${warmUpRounds} x ${warmUpSlice} s, alternating)`,
        );
      }

      // -- latency
      for (const surface of surfaces) {
        await load(surface.target, 1, durations.warmUp);
        const result = await load(surface.target, 1, durations.latency);
        generateProblems.push(...unexpectedOutcomes(result).map((problem) => `${surface.name} latency: ${problem}`));
        const { added, text } = againstDirect(result, directLatency);
        line(`${surface.name} generate, 1 connection`, text);
        line('', describeOutcome(result));
        floors.push(
          {
            name: `${surface.name} added latency p50`,
            measured: formatSigned(added.p50, formatMs),
            limit: `<= ${formatMs(floorsOfIssue.addedP50Ms)}`,
            pass: added.p50 <= floorsOfIssue.addedP50Ms,
          },
          {
            name: `${surface.name} added latency p99`,
            measured: formatSigned(added.p99, formatMs),
            limit: `<= ${formatMs(floorsOfIssue.addedP99Ms)}`,
            pass: added.p99 <= floorsOfIssue.addedP99Ms,
          },
        );
      }

      // -- throughput and loaded RSS
      for (const surface of surfaces) {
        const warmUp = await load(surface.target, loadConnections, durations.warmUp);
        generateProblems.push(...unexpectedOutcomes(warmUp).map((problem) => `${surface.name} warm-up: ${problem}`));
      }
      const gatewayCpuBefore = gateway.cpuSeconds();
      for (let slice = 0; slice < generateSlices; slice += 1) {
        const surface = slice % 2 === 0 ? rest : graphql;
        const result = await load(surface.target, loadConnections, durations.generateSlice);
        surface.slices.push(result);
        generateProblems.push(...unexpectedOutcomes(result).map((problem) => `${surface.name} throughput: ${problem}`));
      }
      const gatewayCpu = gateway.cpuSeconds() - gatewayCpuBefore;
      const loadedRss = gateway.residentMiB();
      const allSlices = [...rest.slices, ...graphql.slices];
      const generateSeconds = allSlices.reduce((sum, result) => sum + result.seconds, 0);
      const generateResponses = allSlices.reduce((sum, result) => sum + result.responses, 0);
      for (const surface of surfaces) {
        const { succeeded, seconds, rate } = combined(surface.slices);
        line(
          `${surface.name} generate, ${loadConnections} connections`,
          `${formatCount(rate)} requests/s = ${formatPercent(rate / baselineRate)} of the upstream (${formatCount(succeeded)} in ${seconds.toFixed(1)} s)`,
        );
        for (const result of surface.slices) line('', describeOutcome(result));
        floors.push({
          name: `${surface.name} throughput vs upstream`,
          measured: formatPercent(rate / baselineRate),
          limit: `>= ${formatPercent(floorsOfIssue.throughputShareOfUpstream)}`,
          pass: rate / baselineRate >= floorsOfIssue.throughputShareOfUpstream,
        });
      }
      const restOverGraphql = combined(rest.slices).rate / combined(graphql.slices).rate;
      line('REST / GraphQL', `${restOverGraphql.toFixed(2)}`);
      line(
        'gateway CPU per generate',
        `${Math.round((gatewayCpu / generateResponses) * 1e6)} µs (x${(gatewayCpu / generateResponses / upstreamCpuPerRequest).toFixed(1)} the upstream's own)`,
      );
      line(`RSS after ${Math.round(generateSeconds)} s of generate load`, formatMiB(loadedRss));
      floors.push(
        {
          name: 'REST within 15% of GraphQL',
          measured: `REST/GraphQL ${restOverGraphql.toFixed(2)}`,
          limit: `${(1 - floorsOfIssue.restVersusGraphql).toFixed(2)}..${(1 + floorsOfIssue.restVersusGraphql).toFixed(2)}`,
          pass: Math.abs(restOverGraphql - 1) <= floorsOfIssue.restVersusGraphql,
        },
        {
          name: 'RSS after generate load',
          measured: formatMiB(loadedRss),
          limit: `<= ${formatMiB(floorsOfIssue.loadedRssMiB)}`,
          pass: loadedRss <= floorsOfIssue.loadedRssMiB,
        },
        {
          name: 'generate answers all 200',
          measured: generateProblems.length === 0 ? 'no errors' : generateProblems.join('; '),
          limit: 'no non-200, GraphQL error or socket error',
          pass: generateProblems.length === 0,
        },
      );

      // -- what recording costs: the same gateway against one with LEDGER=off, alternating
      heading('Ledger on (SQLite in DATA_DIR) vs LEDGER=off: REST generate, 1 connection');
      const unrecorded = await launch({ ...highLimits, LEDGER: 'off' });
      await load(restGenerate(unrecorded), loadConnections, durations.freshWarmUp);
      const ledgerProblems: string[] = [];
      const ledger = await compareAlternating(
        { gateway, latencyLabel: 'ledger on', loadLabel: 'ledger on', problemTag: 'ledger on' },
        { gateway: unrecorded, latencyLabel: 'LEDGER=off', loadLabel: 'ledger off', problemTag: 'ledger off' },
        ledgerRounds,
        'recording adds',
        ledgerProblems,
      );
      pushComparisonFloors(
        { name: 'ledger added latency p50 (SQLite)', addedP50: ledger.addedP50, limitMs: floorsOfIssue.ledgerAddedP50Ms },
        { name: 'ledger runs answer all 200', problems: ledgerProblems, limit: 'no non-200 or socket error' },
      );
      await stop(unrecorded);
      await stop(gateway);

      await measureBudgetReservation();

      // -- health under a high limit
      heading('Fresh gateway, RATE_LIMIT_DEFAULT=1000000: health over time');
      const healthGateway = await launch({ RATE_LIMIT_DEFAULT: '1000000' });
      line('start to ready', formatMs(healthGateway.startToReadyMs));
      const healthWarmUp = await load(health(healthGateway), loadConnections, durations.freshWarmUp);
      line(
        `warm-up (${durations.freshWarmUp} s)`,
        `${formatCount(successRate(healthWarmUp))} requests/s; ${describeOutcome(healthWarmUp)}`,
      );
      const healthResults: LoadResult[] = [];
      for (let slice = 0; slice < healthSlices; slice += 1) {
        const result = await load(health(healthGateway), loadConnections, durations.healthSlice);
        healthResults.push(result);
        const rate = successRate(result);
        line(
          `slice ${slice + 1} (${durations.healthSlice} s)`,
          `${formatCount(rate)} requests/s = ${formatPercent(rate / baselineRate)} of the upstream; ${describeOutcome(result)}`,
        );
      }
      const [healthFirst, healthLast] = firstAndLast(healthResults.map(successRate));
      const healthDrift = relativeChange(healthFirst, healthLast);
      const healthProblems = [healthWarmUp, ...healthResults].flatMap((result) => unexpectedOutcomes(result));
      floors.push(
        {
          name: 'health last slice vs first',
          measured: `${formatCount(healthFirst)} -> ${formatCount(healthLast)} requests/s (${formatSigned(healthDrift, formatPercent)})`,
          limit: `within ${formatPercent(floorsOfIssue.healthDrift)}`,
          pass: Math.abs(healthDrift) <= floorsOfIssue.healthDrift,
        },
        {
          name: 'health answers all 200',
          measured: healthProblems.length === 0 ? 'no errors' : healthProblems.join('; '),
          limit: 'no non-200 or socket error',
          pass: healthProblems.length === 0,
        },
      );
      await stop(healthGateway);

      // -- flood at the default limits
      heading('Fresh gateway at the default limits: one key floods REST generate');
      const floodGateway = await launch({});
      line('start to ready', formatMs(floodGateway.startToReadyMs));
      const flood = restGenerate(floodGateway);
      const warmUp = await load(flood, loadConnections, durations.freshWarmUp);
      line(`warm-up (${durations.freshWarmUp} s)`, `${formatCount(refusalRate(warmUp))} refusals/s; ${describeOutcome(warmUp)}`);
      const rssBefore = floodGateway.residentMiB();
      const floodResults: LoadResult[] = [];
      for (let slice = 0; slice < floodSlices; slice += 1) {
        const result = await load(flood, loadConnections, durations.floodSlice);
        floodResults.push(result);
        const refusals = refusalRate(result);
        line(
          `slice ${slice + 1} (${durations.floodSlice} s)`,
          `${formatCount(refusals)} refusals/s = ${formatPercent(refusals / baselineRate)} of the upstream; ${describeOutcome(result)}`,
        );
      }
      const rssAfter = floodGateway.residentMiB();
      line('RSS', `${formatMiB(rssBefore)} after the warm-up -> ${formatMiB(rssAfter)} after the flood`);
      const [floodFirst, floodLast] = firstAndLast(floodResults.map(refusalRate));
      const floodDrift = relativeChange(floodFirst, floodLast);
      const floodProblems = [warmUp, ...floodResults].flatMap((result) => unexpectedOutcomes(result, [200, 429]));
      floors.push(
        {
          name: 'flood refusals last slice vs first',
          measured: `${formatCount(floodFirst)} -> ${formatCount(floodLast)} refusals/s (${formatSigned(floodDrift, formatPercent)})`,
          limit: `within ${formatPercent(floorsOfIssue.floodDrift)}`,
          pass: Math.abs(floodDrift) <= floorsOfIssue.floodDrift,
        },
        {
          name: 'flood RSS growth',
          measured: formatSigned(rssAfter - rssBefore, formatMiB),
          limit: `<= ${formatMiB(floorsOfIssue.floodRssGrowthMiB)}`,
          pass: rssAfter - rssBefore <= floorsOfIssue.floodRssGrowthMiB,
        },
        {
          name: 'flood answers 200 or 429 only',
          measured: floodProblems.length === 0 ? 'no errors' : floodProblems.join('; '),
          limit: 'no other status, no socket error',
          pass: floodProblems.length === 0,
        },
      );
      await stop(floodGateway);

      // Every start counts, not only the first.
      const slowestStart = Math.max(...[gateway, healthGateway, floodGateway].map((started) => started.startToReadyMs));
      floors.unshift({
        name: 'start to ready (slowest of 3)',
        measured: formatMs(slowestStart),
        limit: `<= ${formatMs(floorsOfIssue.startToReadyMs)}`,
        pass: slowestStart <= floorsOfIssue.startToReadyMs,
      });
    }

    if (options.phase === 'budget') await measureBudgetReservation();

    // -- what an evaluation run going costs interactive traffic on the same gateway
    if (options.phase === 'all' || options.phase === 'evaluation') {
      const evaluationDataDirectory = path.join(workspace, 'evaluation');
      mkdirSync(evaluationDataDirectory);
      floors.push(
        ...(await runEvaluationPhase({
          core: serverCore,
          delayMs: options.evaluationDelayMs,
          rounds: evaluationRounds,
          durations,
          headers: jsonHeaders,
          catalogPath: path.join(workspace, 'catalog-evaluation.json'),
          upstreamUrl: upstream.url,
          interactiveModelId: modelId,
          launch: (extra) => launch({ ...highLimits, ...extra }),
          stop,
          load,
          restGenerate,
          checkGenerateWorks,
          dataDirectory: evaluationDataDirectory,
        })),
      );
    }

    // -- streams: time to first token through the gateway, memory under 200 concurrent streams
    if (options.phase === 'all' || options.phase === 'stream') {
      const streamDirectory = path.join(workspace, 'stream');
      mkdirSync(streamDirectory);
      floors.push(
        ...(await runStreamPhase({
          gatewayCore: serverCore,
          loadCore,
          quick: options.quick,
          ...options.stream,
          directory: streamDirectory,
          launch: (extra, nodeArguments) => launch({ ...highLimits, ...extra }, nodeArguments),
          launchReference,
          stop,
        })),
      );
    }
  } finally {
    for (const gateway of [...running]) await gateway.stop();
    await upstream.stop();
  }

  printFloors(floors);
  console.log(`bench ran ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  return floors.every((floor) => floor.pass) ? 0 : 1;
}

main().then(
  (exitCode) => process.exit(exitCode),
  (error: unknown) => {
    console.error(`\nbench:gateway could not run: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
