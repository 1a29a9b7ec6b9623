/**
 * The feedback export at volume, on the embedded SQLite ledger: 100,000 finished generations with
 * content and one piece of feedback each (a thumbs up on all, a correction on every tenth), written
 * straight into the ledger file the real gateway then serves. The chat export must hold every
 * generation exactly once, as OpenAI's chat fine-tuning format, with the corrections winning, and
 * it must stream: the process's memory during the download stays far below what holding the file
 * would take. The preference export holds exactly the 10,000 corrected generations.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type BetterSqlite3 from 'better-sqlite3';
import { openDatabase } from '../../src/storage/database';
import { newFeedbackId, newGenerationId } from '../../src/storage/generation-id';
import { checkFineTuningJsonl } from '../support/fine-tuning-format';
import { type RunningGateway, startGateway } from '../support/start-gateway';

const GENERATIONS = 100_000;
const CORRECTED_EVERY = 10;
const CORRECTIONS = GENERATIONS / CORRECTED_EVERY;
const FIRST_CREATED_AT = Date.UTC(2025, 0, 1);
/** One second apart: the ids (time-ordered) follow the index. */
const STEP_MS = 1000;
/** The feedback comes a minute after its generation. */
const FEEDBACK_DELAY_MS = 60_000;
const MODEL = 'gpt-4o-mini';
const MIB = 1024 * 1024;
/**
 * The bound on the process's growth (RSS, server and client together: both run in this process)
 * over its baseline during the 100,000-line chat download. The file is about 122 MB of UTF-8; every
 * line carries characters outside Latin-1, so as one JavaScript string it would take about twice
 * that (UTF-16), and the rows it is built from as much again: buffering it anywhere costs well over
 * 100 MiB (a client that only reads it whole with arrayBuffer() grew RSS by about 360 MiB here).
 * Streaming holds one chunk of 500 generations (~1 MB of rows and lines), the socket's and the
 * client's buffers (~15 MiB of external memory measured), what the test keeps (~2.4 MB of sampled
 * lines), and the garbage the collector has not reclaimed yet: measured +28 to +52 MiB over a dozen
 * runs on a 2-core machine (some pinned to one core); with a collection forced before each sample,
 * +11 MiB of V8 heap and +25 MiB of RSS. 64 MiB leaves room for the collector's lag on a loaded machine, while a buffered export
 * cannot fit in it.
 */
const RSS_GROWTH_BOUND = 64 * MIB;

// Long, JSON-escaped (quotes, backslash, newline, tab) and multi-byte (2-, 3- and 4-byte UTF-8) content.
const PROMPT_BODY =
  'Summarise the following support ticket in one sentence for the on-call engineer.\n' +
  'Customer: "Since Tuesday\'s release I cannot log in; the reset link says \\"expired\\" at once." ' +
  'Locale: fr-FR (café, naïve, déjà vu), ja-JP (東京, ログイン), emoji 😀🔐.\t' +
  'History: '.padEnd(400, 'previous tickets closed as duplicates; ');
const ANSWER_BODY =
  'The customer cannot log in after the password reset: the link is reported as "expired" immediately ' +
  '(fr-FR user, café account, 東京 region 🔐). '.padEnd(330, 'Escalate to identity; ');

const pad = (index: number) => String(index).padStart(6, '0');
const promptOf = (index: number) => `Ticket ${pad(index)}: ${PROMPT_BODY}`;
const textOf = (index: number) => `Answer ${pad(index)}: ${ANSWER_BODY}`;
const correctionOf = (index: number) => `Correction ${pad(index)}: ${ANSWER_BODY}`;
const indexOf = (prompt: string): number => {
  const match = /^Ticket (\d{6}): /.exec(prompt);
  if (!match) throw new Error(`not a seeded prompt: ${prompt.slice(0, 40)}`);
  return Number(match[1]);
};

/** The ledger file, migrated by openDatabase, then filled in big transactions through better-sqlite3 (like bench-ledger). */
async function seedLedger(file: string): Promise<void> {
  const migrated = await openDatabase({ sqliteFile: file });
  await migrated.close();
  const Sqlite = require('better-sqlite3') as typeof BetterSqlite3;
  const sqlite = new Sqlite(file);
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    const insertGeneration = sqlite.prepare(
      `insert into generations (id, request_id, caller, team, source, model_id, provider, upstream_model, status, error,
         finish_reason, prompt, text, prompt_name, prompt_version, evaluation_id, max_tokens, temperature, top_p,
         input_tokens, output_tokens, cost_units, latency_ms, attempts, created_at, finished_at)
       values (?, ?, 'key-volume', null, 'generate', ?, 'openai', ?, 'succeeded', null, 'stop', ?, ?, null, null, null,
         256, 0.7, 1, 180, 90, 810000, 420, '[]', ?, ?)`,
    );
    const insertFeedback = sqlite.prepare(
      `insert into feedback (id, generation_id, model_id, caller, score, thumbs, comment, correction, tags, created_at)
       values (?, ?, ?, 'reviewer', null, 'up', null, ?, '[]', ?)`,
    );
    const insertRange = sqlite.transaction((from: number, to: number) => {
      for (let index = from; index < to; index++) {
        const createdAt = FIRST_CREATED_AT + index * STEP_MS;
        const generationId = newGenerationId(new Date(createdAt));
        insertGeneration.run(
          generationId,
          `req-${index}`,
          MODEL,
          `${MODEL}-2024-07-18`,
          promptOf(index),
          textOf(index),
          createdAt,
          createdAt + 420,
        );
        const feedbackAt = createdAt + FEEDBACK_DELAY_MS;
        const correction = index % CORRECTED_EVERY === 0 ? correctionOf(index) : null;
        insertFeedback.run(newFeedbackId(new Date(feedbackAt)), generationId, MODEL, correction, feedbackAt);
      }
    });
    const transactionSize = 20_000;
    for (let from = 0; from < GENERATIONS; from += transactionSize) insertRange(from, Math.min(GENERATIONS, from + transactionSize));
    sqlite.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    sqlite.close();
  }
}

interface MemoryWatch {
  readonly baseline: NodeJS.MemoryUsage;
  /** Takes one sample now (besides the timer's). */
  sample(): void;
  stop(): { peakRss: number; peakHeapUsed: number; samples: number };
}

/** Samples the process's RSS and V8 heap every ~50 ms (and whenever asked) from now until stopped. */
function watchMemory(): MemoryWatch {
  const baseline = process.memoryUsage();
  let peakRss = baseline.rss;
  let peakHeapUsed = baseline.heapUsed;
  let samples = 0;
  const sample = (): void => {
    const usage = process.memoryUsage();
    samples += 1;
    peakRss = Math.max(peakRss, usage.rss);
    peakHeapUsed = Math.max(peakHeapUsed, usage.heapUsed);
  };
  const timer = setInterval(sample, 50);
  return {
    baseline,
    sample,
    stop() {
      clearInterval(timer);
      sample();
      return { peakRss, peakHeapUsed, samples };
    },
  };
}

/**
 * Reads a response body as it arrives and hands over each complete line's bytes (without its
 * newline), as a view of the received chunk: valid during the call only, copy it to keep it. Only
 * the unfinished tail of the last chunk is kept between chunks.
 */
async function forEachLine(
  body: ReadableStream<Uint8Array>,
  onLine: (line: Buffer, lineNumber: number) => void,
  onChunk: () => void = () => {},
): Promise<{ lines: number; bytes: number; endsWithNewline: boolean }> {
  const reader = body.getReader();
  let tail: Buffer = Buffer.alloc(0);
  let lines = 0;
  let bytes = 0;
  let lastByte = -1;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value.length === 0) continue;
    bytes += value.length;
    lastByte = value[value.length - 1]!;
    onChunk();
    const chunk = Buffer.from(value.buffer, value.byteOffset, value.length);
    let start = 0;
    for (let newline = chunk.indexOf(10, start); newline !== -1; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      lines += 1;
      onLine(tail.length === 0 ? piece : Buffer.concat([tail, piece]), lines);
      tail = Buffer.alloc(0);
      start = newline + 1;
    }
    // Copied: the chunk itself must not stay alive through its tail.
    if (start < chunk.length) tail = Buffer.concat([tail, chunk.subarray(start)]);
  }
  if (tail.length > 0) {
    lines += 1;
    onLine(tail, lines);
  }
  return { lines, bytes, endsWithNewline: lastByte === 10 };
}

/** The chat example the export must write for a generation: its prompt, then its newest correction or its text. */
const chatExample = (index: number) => ({
  messages: [
    { role: 'user', content: promptOf(index) },
    { role: 'assistant', content: index % CORRECTED_EVERY === 0 ? correctionOf(index) : textOf(index) },
  ],
});

/**
 * Checks the chat export's lines without building strings for them (the download's memory is
 * measured, so the check must not be what fills it): the generation's index is read from the
 * prompt's digits, and the line is compared byte for byte with a template of the expected example
 * whose digits are rewritten in place. A line that differs in bytes only (another JSON spelling of
 * the same example) is parsed and compared as values.
 */
function chatLineChecker() {
  const template = (corrected: boolean) => {
    const bytes = Buffer.from(JSON.stringify(chatExample(corrected ? 0 : 1)));
    const digits: number[] = [];
    for (const marker of ['Ticket ', corrected ? 'Correction ' : 'Answer ']) digits.push(bytes.indexOf(marker) + marker.length);
    return { bytes, digits };
  };
  const corrected = template(true);
  const plain = template(false);
  const promptDigits = corrected.digits[0]!;
  return {
    /** The generation whose prompt the line carries, or undefined for a line that is no seeded example. */
    indexOf(line: Buffer): number | undefined {
      if (line.length < promptDigits + 6 || line.compare(corrected.bytes, 0, promptDigits, 0, promptDigits) !== 0) return undefined;
      let index = 0;
      for (let at = promptDigits; at < promptDigits + 6; at++) {
        const digit = line[at]! - 48;
        if (digit < 0 || digit > 9) return undefined;
        index = index * 10 + digit;
      }
      return index < GENERATIONS ? index : undefined;
    },
    matches(line: Buffer, index: number): boolean {
      const expected = index % CORRECTED_EVERY === 0 ? corrected : plain;
      const digits = pad(index);
      for (const at of expected.digits) expected.bytes.write(digits, at, 'latin1');
      if (line.equals(expected.bytes)) return true;
      return isDeepStrictEqual(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(line)), chatExample(index));
    },
  };
}

/** Lines joined as one JSON Lines file (each with its newline), for checkFineTuningJsonl. */
const asFile = (lines: readonly Buffer[]): Buffer => Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\n')]));

describe('feedback export at volume (SQLite: 100,000 generations with feedback)', () => {
  let dataDir: string;
  let gateway: RunningGateway | undefined;
  const exportUrl = (query: Record<string, string>) => `${gateway!.url}/api/v1/feedback/export?${new URLSearchParams(query)}`;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-feedback-volume-'));
    const file = path.join(dataDir, 'llmop.db');
    const seedStartedAt = performance.now();
    await seedLedger(file);
    console.log(
      `seeded ${GENERATIONS.toLocaleString('en-US')} generations and as many pieces of feedback in ` +
        `${((performance.now() - seedStartedAt) / 1000).toFixed(1)} s: ${(statSync(file).size / 1e6).toFixed(0)} MB`,
    );
    gateway = await startGateway({ env: { DATA_DIR: dataDir } });
    // A warm-up export (the last 1,000 pieces of feedback): the route, its queries and the HTTP
    // client are loaded and compiled before the baseline of the measured download.
    const lastThousand = new Date(FIRST_CREATED_AT + (GENERATIONS - 1000) * STEP_MS + FEEDBACK_DELAY_MS).toISOString();
    const warmUp = await fetch(exportUrl({ format: 'chat', since: lastThousand }));
    expect(warmUp.status).toBe(200);
    expect(checkFineTuningJsonl(Buffer.from(await warmUp.arrayBuffer()), 'chat')).toHaveLength(1000);
  }, 180_000);

  afterAll(async () => {
    await gateway?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('streams the chat export: every generation once, the 10,000 corrections as their answers, memory flat', async () => {
    const checkedLines: Buffer[] = [];
    const chatLines = chatLineChecker();
    const seen = new Uint8Array(GENERATIONS);
    let corrections = 0;
    const watch = watchMemory();
    let chunks = 0;
    // Waiting for the client must not leave listeners behind (a pile of them was once 15 MiB of this export).
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    const startedAt = performance.now();
    const response = await fetch(exportUrl({ format: 'chat' }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const result = await forEachLine(
      response.body!,
      (line, lineNumber) => {
        // The first 1,000 lines and every 97th after also go through the full format check below.
        // Copied: a line is a view of the received chunk, which must not stay alive with it.
        if (lineNumber <= 1000 || lineNumber % 97 === 0) checkedLines.push(Buffer.from(line));
        const index = chatLines.indexOf(line);
        if (index === undefined) throw new Error(`line ${lineNumber}: not an example of a seeded generation`);
        if (seen[index]) throw new Error(`line ${lineNumber}: generation ${index} exported twice`);
        seen[index] = 1;
        if (!chatLines.matches(line, index)) {
          throw new Error(`line ${lineNumber}: not generation ${index}'s example: ${line.subarray(0, 200).toString()}`);
        }
        if (index % CORRECTED_EVERY === 0) corrections += 1;
      },
      () => {
        if (++chunks % 64 === 0) watch.sample();
      },
    );
    const seconds = (performance.now() - startedAt) / 1000;
    process.off('warning', onWarning);
    expect(warnings.filter((warning) => warning.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    const { peakRss, peakHeapUsed, samples } = watch.stop();
    const rssGrowth = peakRss - watch.baseline.rss;
    const heapGrowth = peakHeapUsed - watch.baseline.heapUsed;
    console.log(
      `chat export: ${result.lines.toLocaleString('en-US')} lines, ${(result.bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s ` +
        `(${(result.bytes / 1e6 / seconds).toFixed(0)} MB/s, ${chunks} chunks); memory over ${samples} samples: ` +
        `RSS ${(watch.baseline.rss / MIB).toFixed(0)} MiB at the start, peak +${(rssGrowth / MIB).toFixed(1)} MiB ` +
        `(bound ${RSS_GROWTH_BOUND / MIB} MiB); heapUsed ${(watch.baseline.heapUsed / MIB).toFixed(0)} MiB at the start, ` +
        `peak +${(heapGrowth / MIB).toFixed(1)} MiB`,
    );

    expect(result.lines).toBe(GENERATIONS);
    expect(result.endsWithNewline).toBe(true);
    expect(seen.every((flag) => flag === 1)).toBe(true);
    expect(corrections).toBe(CORRECTIONS);
    expect(checkedLines.length).toBeGreaterThan(1900);
    expect(checkFineTuningJsonl(asFile(checkedLines), 'chat')).toHaveLength(checkedLines.length);
    // Buffering the file would cost more than its own size (result.bytes): the bound must be well below it.
    expect(RSS_GROWTH_BOUND).toBeLessThan(result.bytes / 1.5);
    expect(rssGrowth).toBeLessThan(RSS_GROWTH_BOUND);
  }, 180_000);

  it('exports the 10,000 corrected generations as preference pairs, every line valid for preference fine-tuning', async () => {
    const response = await fetch(exportUrl({ format: 'preference' }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const file = Buffer.from(await response.arrayBuffer());
    const examples = checkFineTuningJsonl(file, 'preference') as {
      input: { messages: { content: string }[] };
      preferred_output: { content: string }[];
      non_preferred_output: { content: string }[];
    }[];
    console.log(`preference export: ${examples.length.toLocaleString('en-US')} lines, ${(file.length / 1e6).toFixed(1)} MB`);
    expect(examples).toHaveLength(CORRECTIONS);
    const indexes = new Set<number>();
    for (const example of examples) {
      const index = indexOf(example.input.messages[0]!.content);
      indexes.add(index);
      if (index % CORRECTED_EVERY !== 0) throw new Error(`generation ${index} has no correction`);
      if (example.input.messages[0]!.content !== promptOf(index)) throw new Error(`the prompt of ${index} differs`);
      if (example.preferred_output[0]!.content !== correctionOf(index)) throw new Error(`the preferred output of ${index} differs`);
      if (example.non_preferred_output[0]!.content !== textOf(index)) throw new Error(`the non-preferred output of ${index} differs`);
    }
    expect(indexes.size).toBe(CORRECTIONS);
  }, 180_000);
});
