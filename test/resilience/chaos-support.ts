/**
 * Pieces of the chaos suite (test/resilience/chaos.test.ts): a client over one keep-alive agent that
 * times each request, a runner with bounded concurrency, a port nothing listens on, and what a
 * process holds (active handles by type, listeners, the V8 heap after a full collection).
 */
import * as http from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export { freePort as deadPort } from '../support/polling';
export { runBounded } from '../support/run-bounded';

/** One answer as the client saw it, with the wall time from sending the request to the end of its body. */
export interface TimedResponse<TBody = any> {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: TBody;
  readonly wallMs: number;
}

/**
 * A JSON client over its own keep-alive agent (not the global fetch, whose pool a test cannot close):
 * `close()` destroys its sockets, so what stays open afterwards is the gateway's.
 */
export class ChaosClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly baseUrl: string,
    maxSockets = 32,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request<TBody = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<TimedResponse<TBody>> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const startedAt = performance.now();
    return new Promise((resolve, reject) => {
      const request = http.request(`${this.baseUrl}${path}`, {
        method,
        agent: this.agent,
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
          ...headers,
        },
      });
      request.once('error', reject);
      request.once('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', reject);
        response.once('end', () => {
          const wallMs = performance.now() - startedAt;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: the raw text
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: parsed as TBody, wallMs });
        });
      });
      request.end(payload);
    });
  }

  /** POST /graphql. */
  graphql<TData = any>(
    query: string,
    variables: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): Promise<TimedResponse<{ data?: TData | null; errors?: Array<{ message: string; extensions?: Record<string, any> }> }>> {
    return this.request('POST', '/graphql', { query, variables }, headers);
  }

  /** Destroys the agent's sockets, idle keep-alive ones included. */
  close(): void {
    this.agent.destroy();
  }
}

/** The process's active resources (handles and requests) counted by type: TCPSocketWrap, Timeout, ... */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** The listeners on `process`, counted by event (a leak per request would show as a growing count). */
export function processListeners(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of process.eventNames()) counts[String(name)] = process.listenerCount(name);
  return counts;
}

/** The types whose count in `now` is above `baseline`, with both counts (empty when none grew). */
export function grownBeyond(
  baseline: Record<string, number>,
  now: Record<string, number>,
): Record<string, { baseline: number; now: number }> {
  const grown: Record<string, { baseline: number; now: number }> = {};
  for (const [type, count] of Object.entries(now)) {
    const before = baseline[type] ?? 0;
    if (count > before) grown[type] = { baseline: before, now: count };
  }
  return grown;
}

let collector: (() => void) | undefined;

/**
 * A full, synchronous garbage collection. Jest runs without --expose-gc: the flag is set at run time and
 * a fresh context (which gets the `gc` global then) hands the function over.
 */
export function forceGc(): void {
  if (!collector) {
    setFlagsFromString('--expose-gc');
    collector = runInNewContext('gc') as () => void;
  }
  // Twice: the first pass may only queue finalizers whose objects the second frees.
  collector();
  collector();
}

/**
 * After a full collection, in bytes: what the V8 heap holds (`heapUsed`), the memory of Buffers and
 * other objects V8 holds outside its heap (`external`, ArrayBuffers included), and the resident size.
 */
export function memoryAfterGc(): { heapUsed: number; external: number; rss: number } {
  forceGc();
  const { heapUsed, external, rss } = process.memoryUsage();
  return { heapUsed, external, rss };
}
