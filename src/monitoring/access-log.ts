import pino from 'pino';
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

/** `stdout`, `off`, or a file path; buffered writes (pino's SonicBoom), so logging never waits on the terminal. */
export function createAccessLog(destination: string): AccessLogWriter | undefined {
  if (destination === 'off') return undefined;
  const stream = pino.destination({ dest: destination === 'stdout' ? 1 : destination, sync: false, mkdir: true });
  let closed = false;
  return {
    write(line) {
      if (!closed) stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve) => {
        // A flush error (a full disk) must not fail shutdown: the lines are lost either way.
        stream.flush(() => {
          // stdout stays open for the process's other output; a file is ours to close.
          if (destination !== 'stdout') stream.end();
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
