import SonicBoom from 'sonic-boom';
import type { AccessLogDestination } from '../config';
import { LineBatcher } from './line-batcher';
import type { RequestLog } from './request-log';

/** One request as the access log writes it: never a key, a prompt or a text. */
export interface AccessLogLine {
  readonly request_id: string;
  readonly caller: string | null;
  readonly method: string;
  readonly route: string;
  /** GraphQL root fields or REST operations, comma-separated; null when none ran. */
  readonly operation: string | null;
  /** The status the server answered (101 for a WebSocket, written when it closes); 499 when the client left before any answer. */
  readonly status: number;
  /**
   * The client went away before the answer was complete (a stream it cut, a WebSocket closed without
   * a close frame): the status is still the one the server had set, so a cut 200 reads apart from a delivered one.
   */
  readonly aborted: boolean;
  /** From the request's start to its answer's end; for a WebSocket, how long the connection lasted. */
  readonly latency_ms: number;
  /** The model of its generations (comma-separated when several); null when it made none. */
  readonly model: string | null;
  readonly generations: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cost_usd: number;
}

export interface AccessLogWriter {
  write(line: AccessLogLine): void;
  /** Opens the file again at its path (SIGHUP, after logrotate moved it away); nothing for stdout. */
  reopen(): void;
  /** Flushes what is buffered; lines written after it are dropped. */
  close(): Promise<void>;
}

/** What the access log buffers at most while its reader (a log shipper on the pipe, a slow disk) lags; later lines are dropped. */
const maxBufferedBytes = 16 * 1024 * 1024;
/**
 * The most one write carries. On stdout, PIPE_BUF on Linux: a pipe takes a write that size or smaller
 * whole, so the access log's own writes never split inside a line (the application log's longer lines
 * are its own matter).
 */
const stdoutWriteBytes = 4096;
const fileWriteBytes = 64 * 1024;
/** The longest shutdown waits for the buffered lines to be written. */
const closeTimeoutMs = 2_000;

/**
 * To stdout, to a file, or off (undefined). Writes are buffered (SonicBoom), so a request never waits on
 * the terminal or the disk; the buffer is bounded, and a write error (a full disk) is reported once and
 * turns the log off rather than taking the gateway down.
 *
 * Lines wait up to `flushMs` and are written together, whole lines to a write (line-batcher.ts).
 * Shutdown writes what waits; a process that dies without shutting down (kill -9) loses the lines
 * still waiting: the last `flushMs` of them, and more when the reader lags.
 */
export function createAccessLog(
  destination: AccessLogDestination,
  flushMs: number,
  onTrouble: (message: string, error?: unknown) => void,
): AccessLogWriter | undefined {
  if (destination.kind === 'off') return undefined;
  const toStdout = destination.kind === 'stdout';
  const writeBytes = toStdout ? stdoutWriteBytes : fileWriteBytes;
  // SonicBoom joins chunks that wait for a write up to maxWrite, so a write never passes writeBytes.
  const stream = new SonicBoom({
    dest: toStdout ? 1 : destination.path,
    sync: false,
    mkdir: true,
    maxLength: maxBufferedBytes,
    maxWrite: writeBytes,
  });
  let state: 'open' | 'failed' | 'closed' = 'open';
  let dropped = 0;
  const batcher = new LineBatcher(
    (chunk) => {
      if (state === 'open') stream.write(chunk);
    },
    flushMs,
    writeBytes,
  );
  stream.on('error', (error: unknown) => {
    if (state !== 'open') return;
    state = 'failed';
    batcher.discard();
    onTrouble('the access log cannot be written; no more lines will be logged', error);
    if (!toStdout) stream.destroy();
  });
  stream.on('drop', (chunk: string) => {
    // A write is a chunk of whole lines: its lines are counted. Reported on the first lost, then at every 10,000 more.
    const before = dropped;
    dropped += lineCount(chunk);
    if (before === 0 || Math.floor(before / 10_000) < Math.floor(dropped / 10_000)) {
      onTrouble(`the access log's reader is behind: ${dropped} line(s) dropped so far`);
    }
  });
  return {
    write(line) {
      if (state === 'open') batcher.add(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
    },
    reopen() {
      // Lines still buffered go to the new file; an error opening it is reported, and turns the log off, as a write error does.
      if (state === 'open' && !toStdout) stream.reopen();
    },
    close() {
      if (state !== 'open') return Promise.resolve();
      batcher.flush();
      state = 'closed';
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, closeTimeoutMs);
        const closed = (): void => {
          clearTimeout(timer);
          resolve();
        };
        // SonicBoom's end writes what is buffered, then emits 'close': its flush(cb) would not wait (it calls
        // back at once without a minLength). It leaves stdout's descriptor open for the process's other
        // output. An error must not fail shutdown: the lines are lost either way.
        stream.once('close', closed);
        stream.once('error', closed);
        stream.end();
      });
    },
  };
}

function lineCount(chunk: string): number {
  let lines = 0;
  for (let at = chunk.indexOf('\n'); at !== -1; at = chunk.indexOf('\n', at + 1)) lines += 1;
  return lines;
}

export function accessLogLine(log: RequestLog, status: number, aborted: boolean, latencyMs: number): AccessLogLine {
  const { count, models, inputTokens, outputTokens, costUsd } = log.generations;
  return {
    request_id: log.requestId,
    caller: log.callerName ?? null,
    method: log.method,
    route: log.route,
    operation: log.operations.length > 0 ? log.operations.join(',') : null,
    status,
    aborted,
    latency_ms: Math.round(latencyMs * 100) / 100,
    model: models.size > 0 ? [...models].join(',') : null,
    generations: count,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    // Rounded to 1e-10 USD steps, as the ledger keeps money.
    cost_usd: Math.round(costUsd * 1e10) / 1e10,
  };
}
