/**
 * The gateway bench's stream phase (issue 15): what LLMOP adds to a stream's time to first token, and
 * whether 200 concurrent streams hold its memory flat.
 *
 * Two fake upstreams stream OpenAI's way (scripts/bench/fake-upstream.ts) on the load core, beside this
 * script, which is the client; the gateway has the other core (the reference proxy waits there between its own
 * calls). One fresh gateway: ledger on
 * (SQLite in a DATA_DIR of its own, LEDGER_CONTENT default), authentication off, rate limits high, both
 * endpoints allowed `concurrentStreams` upstream calls at once (PROVIDER_CONCURRENCY's default of 64
 * would queue 136 of the 200 streams in the gateway instead of streaming them). It is started with a
 * probe preloaded (scripts/bench/memory-probe.ts: a full GC and process.memoryUsage() on SIGUSR2), so
 * its heap is read without src/ knowing about the bench.
 *
 * - Time to first token: first each gateway surface (and REST generate) gets `concurrentWarmUp` calls,
 *   `warmUpConcurrency` at once, so V8 has optimised the path the timed calls take. Then a short stream
 *   (4 words, the first `firstChunkDelayMs` after the request, then 1 ms apart), one call at a time, from the moment the request is sent to the first event carrying
 *   text: straight to the upstream, through `POST /api/v1/generate/stream` (first `event: delta`) and
 *   through `POST /v1/chat/completions` with `stream: true` (first chunk with content) when that route
 *   answers (it is skipped, and said so, when the gateway has no /v1), and through a bare Node proxy
 *   (reference-proxy.ts; no floor: what any Node process adds here). Calls alternate between the
 *   surfaces, in a rotating order, on one kept-alive connection each. Floor: added p50 <= 1 ms. The
 *   time to the status line is split out (LLMOP sends it once the upstream has sent its own, so what it
 *   adds there is its work ahead of the upstream call), and, for comparison, the same gateway's
 *   non-streaming REST generate is timed against the upstream's JSON answer, interleaved with the rest.
 * - Memory: rounds of 200 concurrent REST streams of `chunks` words (a tenth with --quick)
 *   `chunkIntervalMs` apart; after each, the gateway's RSS (from /proc/<pid>/status), then a full GC
 *   and its RSS and heap used. Round 1 warms the process (JIT, SQLite's page cache, connection pools).
 *   Floors: RSS after GC, the median of the last three rounds against the median of rounds 2-4, grows by
 *   at most `maxRssGrowthMiB` (25 MiB: why there); heap used after GC, round 2 to the last, by at most
 *   `maxHeapGrowthMiB`.
 *   Also printed: chunks/s delivered to the clients, the gateway's CPU (share of its core, per chunk),
 *   the load core's CPU, and each round's stream durations and times to first token.
 */
import { Agent } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cpuSeconds, startFakeUpstream, type RunningGateway, type RunningUpstream } from './processes';
import { formatCount, formatMiB, formatMs, formatPercent, formatSigned, heading, line, type Floor } from './report';
import { runStream, timePost, type StreamCall, type StreamOutcome } from './stream-client';
import { streamedReply } from './stream-reply';

export interface StreamPhaseSettings {
  /** The gateway's core, shared in this phase only with the reference proxy (idle but for its own calls). */
  readonly gatewayCore: number;
  /** The fake upstreams' core, shared with this script (the client), already pinned there. */
  readonly loadCore: number;
  readonly quick: boolean;
  /** When each upstream stream sends its first word. */
  readonly firstChunkDelayMs: number;
  /** Memory rounds: words a stream, and the time between two. */
  readonly chunks: number;
  readonly chunkIntervalMs: number;
  /** A directory of this phase's own (created by the caller): catalog, DATA_DIR, the probe's file. */
  readonly directory: string;
  /** Starts a fresh gateway with these variables over the bench's environment and these node options. */
  launch(extra: Record<string, string>, nodeArguments: readonly string[]): Promise<RunningGateway>;
  /** Starts the reference, a bare Node proxy (reference-proxy.ts), in front of this upstream, on the gateway's core. */
  launchReference(upstreamUrl: string): Promise<RunningGateway>;
  stop(gateway: RunningGateway): Promise<void>;
}

const concurrentStreams = 200;
const shortModelId = 'bench-stream-short';
const longModelId = 'bench-stream-long';
/** The short streams: the four words of "hello from the bench", 1 ms apart after the first. */
const shortChunks = 4;
const shortIntervalMs = 1;
const prompt = 'Say hello to the bench';
/** Issue 15: each stream's time to first token through LLMOP within 1 ms p50 of the upstream's. */
const maxAddedP50Ms = 1;
/**
 * The bound on RSS growth after a full GC, the median of the last three rounds against the median of
 * rounds 2-4. On a process whose heap used after GC stays within 0.5 MiB, single RSS readings still
 * move by up to 25 MiB from one round to the next, either way, and the two medians by up to 18 MiB
 * (five full runs on the 2-core machine): V8 sizes its heap to the allocation rate (80-113 MiB
 * committed around 35 MiB used, pages it gives up kept in its pool) and Buffers wait for their
 * backing stores to be freed (4-18 MiB external). A bound of 10 MiB would fail a flat process about
 * one run in four; 25 MiB does not, and still catches a native leak of 150 bytes a chunk or 43 KiB a
 * stream over the 3 rounds of 200 streams between the windows. The heap bound is the fine one.
 */
const maxRssGrowthMiB = 25;
/**
 * The bound on heap used after a full GC, round 2 to the last: the heap after a full collection is
 * what is still referenced, so it does not move with the allocator. 2 MiB over 5 rounds of 200 streams
 * is 2 KiB a stream, or 7 bytes a chunk.
 */
const maxHeapGrowthMiB = 2;
const streamTimeoutMs = 60_000;
/** How many warm-up calls run at once. */
const warmUpConcurrency = 10;
/** After a round: the ledger rows of its last streams are written before memory is read. */
const settleMs = 250;
const probeTimeoutMs = 5000;

interface Counts {
  /** Calls each surface but the direct one gets, `warmUpConcurrency` at a time, before any is timed (V8 optimises the path). */
  readonly concurrentWarmUp: number;
  readonly ttftWarmUp: number;
  readonly ttftSamples: number;
  readonly rounds: number;
  /** Divides the words of the memory rounds' streams (at least 10 remain). */
  readonly chunkDivisor: number;
}
const fullCounts: Counts = { concurrentWarmUp: 3000, ttftWarmUp: 100, ttftSamples: 300, rounds: 7, chunkDivisor: 1 };
const quickCounts: Counts = { concurrentWarmUp: 100, ttftWarmUp: 10, ttftSamples: 30, rounds: 4, chunkDivisor: 10 };

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Nearest rank: the smallest sample with at least `quantile` of the samples at or below it. */
function percentile(values: readonly number[], quantile: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(quantile * sorted.length) - 1))]!;
}

interface MemoryReading {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  /** V8's heap as committed (used or not), and memory outside it held by JS objects (Buffers among it). */
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
  readonly collected: boolean;
}

/** Asks the preloaded probe for a full GC and its memory, and waits for its line in `file`. */
async function readMemory(gateway: RunningGateway, file: string): Promise<MemoryReading | undefined> {
  const linesBefore = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
  process.kill(gateway.pid, 'SIGUSR2');
  const deadline = performance.now() + probeTimeoutMs;
  while (performance.now() < deadline) {
    await pause(20);
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length > linesBefore) {
      const reading = JSON.parse(lines.at(-1)!) as {
        rss: number;
        heapUsed: number;
        heapTotal: number;
        external: number;
        collected: boolean;
      };
      return {
        rssMiB: reading.rss / 2 ** 20,
        heapUsedMiB: reading.heapUsed / 2 ** 20,
        heapTotalMiB: reading.heapTotal / 2 ** 20,
        externalMiB: reading.external / 2 ** 20,
        collected: reading.collected,
      };
    }
  }
  return undefined;
}

interface Surface {
  readonly name: string;
  readonly call: StreamCall;
  readonly agent: Agent;
  readonly firstTokenMs: number[];
  readonly headersMs: number[];
  readonly problems: string[];
}

function openAIStreamBody(model: string): string {
  return JSON.stringify({
    model,
    messages: [{ role: 'user', content: prompt }],
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  });
}

function surface(name: string, call: StreamCall): Surface {
  return { name, call, agent: new Agent({ keepAlive: true, maxSockets: 1 }), firstTokenMs: [], headersMs: [], problems: [] };
}

function record(target: Surface, outcome: StreamOutcome, keepSample: boolean): void {
  if (outcome.problem !== undefined) target.problems.push(outcome.problem);
  else if (keepSample && outcome.firstTokenMs !== undefined && outcome.headersMs !== undefined) {
    target.firstTokenMs.push(outcome.firstTokenMs);
    target.headersMs.push(outcome.headersMs);
  }
}

/** "a, b x3": each distinct problem once, with its count. */
function summarise(problems: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const problem of problems) counts.set(problem, (counts.get(problem) ?? 0) + 1);
  return [...counts].map(([problem, count]) => (count > 1 ? `${problem} x${count}` : problem)).join('; ');
}

/** What each part of the phase hands back: its floors, and what went wrong on the way. */
interface PartResult {
  readonly floors: Floor[];
  readonly problems: string[];
}

/** The TTFT part: the short model's upstream, the gateway in front of it, how many calls. */
interface FirstTokenSettings {
  readonly upstreamUrl: string;
  readonly gateway: RunningGateway;
  /** A bare Node proxy in front of the same upstream: timed with the gateway's surfaces, held to no floor. */
  readonly reference: RunningGateway;
  readonly counts: Counts;
}

/**
 * Calls `run` `calls` times, `warmUpConcurrency` at once, and counts the calls per second. A fresh
 * gateway runs its first thousands of calls on V8's interpreter and baseline code (REST generate at 10
 * connections serves about a quarter of its steady rate in the first 2 s after start and reaches it
 * after about 10 s): timed calls come after this, as on a server that has been up a while.
 */
async function warmUp(calls: number, run: () => Promise<string | undefined>, problems: string[]): Promise<number> {
  let next = 0;
  const startedAt = performance.now();
  const worker = async (): Promise<void> => {
    while (next < calls) {
      next += 1;
      const problem = await run();
      if (problem !== undefined) problems.push(problem);
    }
  };
  await Promise.all(Array.from({ length: warmUpConcurrency }, worker));
  return calls / ((performance.now() - startedAt) / 1000);
}

/**
 * Time to first token, one call at a time, alternating the surfaces; beside each round of streams,
 * one non-streaming REST generate and one direct JSON call, for comparison.
 */
async function measureFirstToken({ upstreamUrl, gateway, reference, counts }: FirstTokenSettings): Promise<PartResult> {
  const reply = streamedReply(shortChunks);
  const direct = surface('direct', {
    url: `${upstreamUrl}/v1/chat/completions`,
    headers: {},
    body: openAIStreamBody(shortModelId),
    dialect: 'openai',
    expectedText: reply,
    expectUsage: true,
  });
  const rest = surface('REST /api/v1/generate/stream', {
    url: `${gateway.url}/api/v1/generate/stream`,
    headers: {},
    body: JSON.stringify({ prompt, model_id: shortModelId, max_tokens: 16 }),
    dialect: 'llmop',
    expectedText: reply,
    expectUsage: false,
  });
  const openAI = surface('/v1/chat/completions', {
    url: `${gateway.url}/v1/chat/completions`,
    headers: {},
    body: openAIStreamBody(shortModelId),
    dialect: 'openai',
    expectedText: reply,
    expectUsage: true,
  });
  const bare = surface('reference: a bare Node proxy', {
    url: `${reference.url}/api/v1/generate/stream`,
    headers: {},
    body: rest.call.body,
    dialect: 'llmop',
    expectedText: reply,
    expectUsage: false,
  });
  const firstRest = await runStream(rest.call, rest.agent, streamTimeoutMs);
  if (firstRest.problem !== undefined) throw new Error(`POST ${rest.call.url} does not stream: ${firstRest.problem}\n${gateway.output()}`);
  const surfaces = [direct, rest];
  // /v1 is built beside this bench: without it, the gateway answers 404 and the surface is left out.
  const firstOpenAI = await runStream(openAI.call, openAI.agent, streamTimeoutMs);
  if (firstOpenAI.status === 404) {
    line('/v1/chat/completions', 'absent in this build (HTTP 404): skipped, TTFT measured direct and through REST only');
  } else {
    surfaces.push(openAI);
    if (firstOpenAI.problem !== undefined) openAI.problems.push(`first call: ${firstOpenAI.problem}`);
  }
  const gatewaySurfaces = surfaces.slice(1);
  surfaces.push(bare);
  line(
    'time to first token',
    `${shortChunks}-word streams, one call at a time, alternating ${surfaces.length} surfaces; ` +
      `after a concurrent warm-up, ${counts.ttftWarmUp} warm-up + ${counts.ttftSamples} measured calls each`,
  );

  const generate = {
    direct: {
      url: `${upstreamUrl}/v1/chat/completions`,
      body: JSON.stringify({ model: shortModelId, messages: [{ role: 'user', content: prompt }], max_tokens: 16 }),
    },
    rest: { url: `${gateway.url}/api/v1/generate`, body: JSON.stringify({ prompt, model_id: shortModelId, max_tokens: 16 }) },
  };
  const generateSamples = { direct: [] as number[], rest: [] as number[] };
  const generateAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  const problems: string[] = [];
  const warmUpAgent = new Agent({ keepAlive: true, maxSockets: warmUpConcurrency });
  const warmUpRates: string[] = [];
  for (const target of surfaces.slice(1)) {
    const rate = await warmUp(
      counts.concurrentWarmUp,
      async () => {
        const outcome = await runStream(target.call, warmUpAgent, streamTimeoutMs);
        return outcome.problem === undefined ? undefined : `${target.name} warm-up: ${outcome.problem}`;
      },
      problems,
    );
    warmUpRates.push(`${target.name} ${formatCount(rate)}/s`);
  }
  const restGenerateRate = await warmUp(
    counts.concurrentWarmUp,
    async () => {
      const answer = await timePost(generate.rest.url, generate.rest.body, warmUpAgent, streamTimeoutMs);
      return answer.status === 200 ? undefined : `rest generate warm-up: HTTP ${answer.status} ${answer.body.slice(0, 200)}`;
    },
    problems,
  );
  warmUpRates.push(`REST generate ${formatCount(restGenerateRate)}/s`);
  warmUpAgent.destroy();
  line('warm-up', `${formatCount(counts.concurrentWarmUp)} calls a surface, ${warmUpConcurrency} at once: ${warmUpRates.join(', ')}`);
  for (let call = 0; call < counts.ttftWarmUp + counts.ttftSamples; call += 1) {
    const measured = call >= counts.ttftWarmUp;
    // A rotating order: no surface always follows the same one.
    for (let turn = 0; turn < surfaces.length; turn += 1) {
      const target = surfaces[(call + turn) % surfaces.length]!;
      record(target, await runStream(target.call, target.agent, streamTimeoutMs), measured);
    }
    for (const side of call % 2 === 0 ? (['direct', 'rest'] as const) : (['rest', 'direct'] as const)) {
      const answer = await timePost(generate[side].url, generate[side].body, generateAgent, streamTimeoutMs);
      if (answer.status !== 200 || !answer.body.includes('hello from the bench')) {
        problems.push(`${side} generate: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
      } else if (measured) generateSamples[side].push(answer.totalMs);
    }
  }
  generateAgent.destroy();
  for (const target of surfaces) target.agent.destroy();

  const floors: Floor[] = [];
  const directP50 = percentile(direct.firstTokenMs, 0.5);
  const directP99 = percentile(direct.firstTokenMs, 0.99);
  const directHeadersP50 = percentile(direct.headersMs, 0.5);
  line('TTFT direct', `p50 ${formatMs(directP50)}, p99 ${formatMs(directP99)} (${direct.firstTokenMs.length} calls)`);
  for (const target of surfaces.slice(1)) {
    const p50 = percentile(target.firstTokenMs, 0.5);
    const p99 = percentile(target.firstTokenMs, 0.99);
    const added = p50 - directP50;
    line(
      `TTFT ${target.name}`,
      `p50 ${formatMs(p50)} (added ${formatSigned(added, formatMs)}), p99 ${formatMs(p99)} (added ${formatSigned(p99 - directP99, formatMs)})`,
    );
    // LLMOP sends its status line once the upstream has sent its own: what it adds before then is its work
    // ahead of the upstream call (admission, the ledger's start row, the SDK's request).
    const addedHeaders = percentile(target.headersMs, 0.5) - directHeadersP50;
    line(
      '',
      `of which p50 ${formatSigned(addedHeaders, formatMs)} to the status line (its work ahead of the upstream call), ` +
        `${formatSigned(added - addedHeaders, formatMs)} from there to the first token`,
    );
    if (!gatewaySurfaces.includes(target)) continue;
    floors.push({
      name: `stream TTFT added p50, ${target.name} vs direct`,
      measured: `${formatSigned(added, formatMs)} (${formatMs(p50)} vs ${formatMs(directP50)})`,
      limit: `<= ${formatMs(maxAddedP50Ms)}`,
      pass: added <= maxAddedP50Ms,
    });
  }
  const generateP50 = { direct: percentile(generateSamples.direct, 0.5), rest: percentile(generateSamples.rest, 0.5) };
  line(
    'for comparison: REST generate',
    `p50 ${formatMs(generateP50.rest)} against ${formatMs(generateP50.direct)} for the upstream's JSON answer directly: ` +
      `added ${formatSigned(generateP50.rest - generateP50.direct, formatMs)} (not streamed; interleaved with the streams)`,
  );
  problems.push(...surfaces.flatMap((target) => target.problems.map((problem) => `${target.name}: ${problem}`)));
  return { floors, problems };
}

/** The memory part: the long model's upstream (to read its CPU), the gateway, how many rounds of how many words. */
interface ConcurrentStreamsSettings {
  readonly upstream: RunningUpstream;
  readonly gateway: RunningGateway;
  readonly memoryFile: string;
  readonly counts: Counts;
  readonly chunks: number;
  readonly firstChunkDelayMs: number;
  readonly chunkIntervalMs: number;
}

/** Rounds of `concurrentStreams` REST streams at once; memory after each, then after a full GC. */
async function measureConcurrentStreams(settings: ConcurrentStreamsSettings): Promise<PartResult> {
  const { gateway, counts, chunks } = settings;
  const call: StreamCall = {
    url: `${gateway.url}/api/v1/generate/stream`,
    headers: {},
    body: JSON.stringify({ prompt, model_id: longModelId, max_tokens: chunks * 2 }),
    dialect: 'llmop',
    expectedText: streamedReply(chunks),
    expectUsage: false,
  };
  const paceSeconds = (settings.firstChunkDelayMs + (chunks - 1) * settings.chunkIntervalMs) / 1000;
  line(
    'concurrent streams',
    `${concurrentStreams} REST streams at once, ${formatCount(chunks)} words ${settings.chunkIntervalMs} ms apart ` +
      `(${paceSeconds.toFixed(1)} s at the upstream's pace), ${counts.rounds} rounds; memory after each, then after a full GC`,
  );
  const agent = new Agent({ keepAlive: true, maxSockets: concurrentStreams });
  const problems: string[] = [];
  const afterCollection: MemoryReading[] = [];
  const rssAtEnd: number[] = [];
  const measured = { chunks: 0, seconds: 0, gatewayCpu: 0 };
  for (let round = 1; round <= counts.rounds; round += 1) {
    const gatewayCpuBefore = gateway.cpuSeconds();
    const upstreamCpuBefore = cpuSeconds(settings.upstream.pid);
    const clientCpuBefore = process.cpuUsage();
    const startedAt = performance.now();
    const outcomes = await Promise.all(Array.from({ length: concurrentStreams }, () => runStream(call, agent, streamTimeoutMs)));
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = gateway.cpuSeconds() - gatewayCpuBefore;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const loadCpu = cpuSeconds(settings.upstream.pid) - upstreamCpuBefore + (clientCpu.user + clientCpu.system) / 1e6;
    const delivered = outcomes.reduce((sum, outcome) => sum + outcome.deltas, 0);
    problems.push(...outcomes.flatMap((outcome) => (outcome.problem === undefined ? [] : [`round ${round}: ${outcome.problem}`])));
    if (round > 1) {
      measured.chunks += delivered;
      measured.seconds += seconds;
      measured.gatewayCpu += cpu;
    }
    await pause(settleMs);
    const rss = gateway.residentMiB();
    rssAtEnd.push(rss);
    const reading = await readMemory(gateway, settings.memoryFile);
    const collectedRss = gateway.residentMiB();
    if (reading) afterCollection.push({ ...reading, rssMiB: collectedRss });
    const durations = outcomes.map((outcome) => outcome.totalMs / 1000);
    const firstTokens = outcomes.flatMap((outcome) => (outcome.firstTokenMs === undefined ? [] : [outcome.firstTokenMs]));
    line(
      `round ${round}${round === 1 ? ' (warm-up)' : ''}`,
      `${seconds.toFixed(1)} s, ${formatCount(delivered / seconds)} chunks/s; gateway CPU ${formatPercent(cpu / seconds)} ` +
        `(${Math.round((cpu / delivered) * 1e6)} µs a chunk), load core ${formatPercent(loadCpu / seconds)}; ` +
        `RSS ${formatMiB(rss)}, after GC ${formatMiB(collectedRss)}${reading ? `, heap used ${formatMiB(reading.heapUsedMiB)} of ${formatMiB(reading.heapTotalMiB)}, external ${formatMiB(reading.externalMiB)}` : ' (no heap reading)'}`,
    );
    line(
      '',
      `streams p50 ${percentile(durations, 0.5).toFixed(2)} s, p99 ${percentile(durations, 0.99).toFixed(2)} s; ` +
        `first token p50 ${formatMs(percentile(firstTokens, 0.5))}, p99 ${formatMs(percentile(firstTokens, 0.99))}`,
    );
  }
  agent.destroy();
  line(
    `rounds 2..${counts.rounds}`,
    `${formatCount(measured.chunks / measured.seconds)} chunks/s delivered, gateway CPU ${formatPercent(measured.gatewayCpu / measured.seconds)} ` +
      `of its core, ${Math.round((measured.gatewayCpu / measured.chunks) * 1e6)} µs a chunk`,
  );

  const last = counts.rounds - 1;
  line(`RSS at round ends, rounds 2..${counts.rounds}`, `${formatSigned(rssAtEnd[last]! - rssAtEnd[1]!, formatMiB)} (no GC)`);
  if (afterCollection.length !== counts.rounds) {
    // Without the probe's readings, the floor falls back on the RSS at each round's end.
    const rssGrowth = rssAtEnd[last]! - rssAtEnd[1]!;
    line('heap used', 'not read: the probe did not answer');
    const floors = [
      {
        name: `RSS at round ends (no GC), ${concurrentStreams} concurrent streams, rounds 2..${counts.rounds}`,
        measured: `${formatSigned(rssGrowth, formatMiB)} (${formatMiB(rssAtEnd[1]!)} -> ${formatMiB(rssAtEnd[last]!)})`,
        limit: `<= ${formatMiB(maxRssGrowthMiB)}`,
        pass: rssGrowth <= maxRssGrowthMiB,
      },
    ];
    return { floors, problems };
  }
  if (!afterCollection.every((reading) => reading.collected)) {
    line('note', 'the probe could not force a GC (no --expose-gc): "after GC" is after no GC');
  }
  const rss = afterCollection.map((reading) => reading.rssMiB);
  const heap = afterCollection.map((reading) => reading.heapUsedMiB);
  line(
    `RSS after GC, rounds 2..${counts.rounds}`,
    `${formatSigned(rss[last]! - rss[1]!, formatMiB)} (${formatMiB(rss[1]!)} -> ${formatMiB(rss[last]!)})`,
  );
  // Windows of up to three rounds each, after the warm-up; with fewer rounds (--quick), one round each.
  const window = Math.max(1, Math.min(3, Math.floor((counts.rounds - 1) / 2)));
  const early = median(rss.slice(1, 1 + window));
  const late = median(rss.slice(-window));
  const windows = `rounds ${window === 1 ? '2' : `2-${1 + window}`} -> ${window === 1 ? counts.rounds : `${counts.rounds - window + 1}-${counts.rounds}`}`;
  const rssGrowth = late - early;
  const heapGrowth = heap[last]! - heap[1]!;
  line(
    'RSS after GC, median early -> late',
    `${formatSigned(rssGrowth, formatMiB)} (${formatMiB(early)} -> ${formatMiB(late)}, ${windows})`,
  );
  line(
    `heap used after GC, rounds 2..${counts.rounds}`,
    `${formatSigned(heapGrowth, formatMiB)} (${formatMiB(heap[1]!)} -> ${formatMiB(heap[last]!)})`,
  );
  const floors = [
    {
      name: `RSS after GC, ${concurrentStreams} concurrent streams, median of ${windows}`,
      measured: `${formatSigned(rssGrowth, formatMiB)} (${formatMiB(early)} -> ${formatMiB(late)})`,
      limit: `<= ${formatMiB(maxRssGrowthMiB)}`,
      pass: rssGrowth <= maxRssGrowthMiB,
    },
    {
      name: `heap used after GC, ${concurrentStreams} concurrent streams, rounds 2..${counts.rounds}`,
      measured: `${formatSigned(heapGrowth, formatMiB)} (${formatMiB(heap[1]!)} -> ${formatMiB(heap[last]!)})`,
      limit: `<= ${formatMiB(maxHeapGrowthMiB)}`,
      pass: heapGrowth <= maxHeapGrowthMiB,
    },
  ];
  return { floors, problems };
}

export async function runStreamPhase(settings: StreamPhaseSettings): Promise<Floor[]> {
  const counts = settings.quick ? quickCounts : fullCounts;
  const chunks = Math.max(Math.min(10, settings.chunks), Math.round(settings.chunks / counts.chunkDivisor));
  heading(
    `Streams (ledger on, auth off): time to first token direct vs through LLMOP; ${concurrentStreams} concurrent streams x ${counts.rounds} rounds, memory`,
  );
  const upstreams: RunningUpstream[] = [];
  try {
    const startUpstream = async (modelId: string, words: number, chunkIntervalMs: number): Promise<RunningUpstream> => {
      const upstream = await startFakeUpstream(settings.loadCore, {
        modelId,
        chunks: words,
        firstChunkDelayMs: settings.firstChunkDelayMs,
        chunkIntervalMs,
      });
      upstreams.push(upstream);
      return upstream;
    };
    const shortUpstream = await startUpstream(shortModelId, shortChunks, shortIntervalMs);
    const longUpstream = await startUpstream(longModelId, chunks, settings.chunkIntervalMs);
    const catalogPath = path.join(settings.directory, 'catalog.json');
    writeFileSync(
      catalogPath,
      JSON.stringify({
        endpoints: [
          { name: shortModelId, base_url: `${shortUpstream.url}/v1`, concurrency: concurrentStreams },
          { name: longModelId, base_url: `${longUpstream.url}/v1`, concurrency: concurrentStreams },
        ],
        models: [
          { id: shortModelId, provider: shortModelId, context_length: 32_768 },
          { id: longModelId, provider: longModelId, context_length: 32_768 },
        ],
      }),
    );
    const memoryFile = path.join(settings.directory, 'memory.jsonl');
    const gateway = await settings.launch(
      { API_KEYS: '', MODEL_CATALOG: catalogPath, DATA_DIR: settings.directory, BENCH_MEMORY_FILE: memoryFile },
      ['--expose-gc', '--require', path.join(__dirname, 'memory-probe.js')],
    );
    line('start to ready', formatMs(gateway.startToReadyMs));
    line(
      'upstreams',
      `OpenAI-style SSE on core ${settings.loadCore} (with this client); the gateway on core ${settings.gatewayCore} (the reference proxy beside it, idle but for its own calls); ` +
        `first word after ${settings.firstChunkDelayMs} ms`,
    );

    const reference = await settings.launchReference(shortUpstream.url);
    const firstToken = await measureFirstToken({ upstreamUrl: shortUpstream.url, gateway, reference, counts });
    await settings.stop(reference);
    const concurrent = await measureConcurrentStreams({
      upstream: longUpstream,
      gateway,
      memoryFile,
      counts,
      chunks,
      firstChunkDelayMs: settings.firstChunkDelayMs,
      chunkIntervalMs: settings.chunkIntervalMs,
    });
    await settings.stop(gateway);
    const problems = [...firstToken.problems, ...concurrent.problems];
    return [
      ...firstToken.floors,
      ...concurrent.floors,
      {
        name: 'streams all end with the upstream text, no error',
        measured: problems.length === 0 ? 'no errors' : summarise(problems),
        limit: 'every stream 200, complete (done / [DONE], usage), text equal to the upstream reply; generate 200',
        pass: problems.length === 0,
      },
    ];
  } finally {
    for (const upstream of upstreams) await upstream.stop();
  }
}
