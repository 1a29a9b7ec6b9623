import SonicBoom from 'sonic-boom';
import type { RequestLog } from './request-log';

/** One request as the access log writes it: never a key, a prompt or a text. */
export interface AccessLogLine {
  readonly request_id: string;
  readonly caller: string | null;
  readonly method: string;
  readonly route: string;
  /** GraphQL root fields or REST operations, comma-separated; null when none ran. */
  readonly operation: string | null;
  readonly status: number;
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
  /** Flushes what is buffered; lines written after it are dropped. */
  close(): Promise<void>;
}

/** What the access log buffers at most while its reader (a log shipper on the pipe, a slow disk) lags; later lines are dropped. */
const maxBufferedBytes = 16 * 1024 * 1024;
/** The longest shutdown waits for the buffered lines to be written. */
const closeTimeoutMs = 2_000;

/**
 * `stdout`, `off`, or a file path. Writes are buffered (SonicBoom), so a request never waits on the
 * terminal or the disk; the buffer is bounded, and a write error (a full disk) is reported once and
 * turns the log off rather than taking the gateway down.
 */
export function createAccessLog(destination: string, onTrouble: (message: string, error?: unknown) => void): AccessLogWriter | undefined {
  if (destination === 'off') return undefined;
  const toStdout = destination === 'stdout';
  const stream = new SonicBoom({ dest: toStdout ? 1 : destination, sync: false, mkdir: true, maxLength: maxBufferedBytes });
  let state: 'open' | 'failed' | 'closed' = 'open';
  let dropped = 0;
  stream.on('error', (error: unknown) => {
    if (state !== 'open') return;
    state = 'failed';
    onTrouble('the access log cannot be written; no more lines will be logged', error);
    if (!toStdout) stream.destroy();
  });
  stream.on('drop', () => {
    // Reported on the first line lost, then every 10,000th: the reader has stalled.
    if (dropped++ % 10_000 === 0) onTrouble(`the access log's reader is behind: ${dropped} line(s) dropped so far`);
  });
  return {
    write(line) {
      if (state === 'open') stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
    },
    close() {
      if (state !== 'open') return Promise.resolve();
      state = 'closed';
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, closeTimeoutMs);
        // A flush error must not fail shutdown: the lines are lost either way.
        stream.flush(() => {
          clearTimeout(timer);
          // stdout stays open for the process's other output; a file is ours to close.
          if (!toStdout) stream.end();
          resolve();
        });
      });
    },
  };
}

export function accessLogLine(log: RequestLog, status: number, latencyMs: number): AccessLogLine {
  const models = [...new Set(log.generations.map((generation) => generation.modelId))];
  let inputTokens = 0;
  let outputTokens = 0;
  let costUsd = 0;
  for (const generation of log.generations) {
    inputTokens += generation.inputTokens;
    outputTokens += generation.outputTokens;
    costUsd += generation.costUsd.total;
  }
  return {
    request_id: log.requestId,
    caller: log.callerName ?? null,
    method: log.method,
    route: log.route,
    operation: log.operations.length > 0 ? log.operations.join(',') : null,
    status,
    latency_ms: Math.round(latencyMs * 100) / 100,
    model: models.length > 0 ? models.join(',') : null,
    generations: log.generations.length,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    // Summed in 1e-10 USD steps, as the ledger keeps money.
    cost_usd: Math.round(costUsd * 1e10) / 1e10,
  };
}
