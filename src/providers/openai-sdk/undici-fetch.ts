import type { Agent as AgentType, Dispatcher } from 'undici';

// Deep requires: undici's index also loads fetch, WebSocket, mocks and cache stores, which double its
// load time at start-up and are never used here. `request` runs on whatever dispatcher is `this`.
const Agent = require('undici/lib/dispatcher/agent') as typeof AgentType;
const dispatchRequest = require('undici/lib/api/api-request') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/**
 * The `fetch` the `openai` SDK calls, built on `undici.request` over one keep-alive Agent.
 * Node's global fetch runs the WHATWG Request/Response layer on every call (~500 µs of CPU);
 * `undici.request` costs a tenth of that. The SDK needs only part of a Response: status, headers
 * with `get`/`entries`, `json()`, `text()`, and a body it can iterate (it accepts any async
 * iterable) or cancel.
 */
export interface UpstreamFetch {
  (url: string | URL, init?: UpstreamRequestInit): Promise<UpstreamResponse>;
  /** Closes the pooled connections. */
  close(): Promise<void>;
}

interface UpstreamRequestInit {
  readonly method?: string;
  readonly headers?: unknown;
  readonly body?: unknown;
  readonly signal?: AbortSignal | null;
}

export function createUndiciFetch(options: { readonly connectionsPerOrigin: number }): UpstreamFetch {
  const agent = new Agent({ connections: options.connectionsPerOrigin, keepAliveTimeout: 30_000, pipelining: 1 });
  const upstreamFetch = async (url: string | URL, init: UpstreamRequestInit = {}): Promise<UpstreamResponse> => {
    const target = typeof url === 'string' ? new URL(url) : url;
    const answer = await dispatchRequest.call(agent, {
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      method: (init.method ?? 'GET').toUpperCase() as Dispatcher.HttpMethod,
      headers: plainHeaders(init.headers),
      body: typeof init.body === 'string' || init.body instanceof Uint8Array ? init.body : undefined,
      signal: init.signal ?? undefined,
    });
    return new UpstreamResponse(String(url), answer);
  };
  return Object.assign(upstreamFetch, { close: () => agent.close() });
}

/** The SDK builds a WHATWG Headers; undici.request takes a plain record. */
function plainHeaders(headers: unknown): Record<string, string> {
  const record: Record<string, string> = {};
  if (headers === undefined || headers === null) return record;
  if (typeof (headers as Headers).forEach === 'function' && !Array.isArray(headers)) {
    (headers as Headers).forEach((value, name) => {
      record[name] = value;
    });
    return record;
  }
  const entries = Array.isArray(headers) ? (headers as Array<[string, string]>) : Object.entries(headers as Record<string, string>);
  for (const [name, value] of entries) record[name.toLowerCase()] = String(value);
  return record;
}

/** Lower-cased response headers with the read-only part of the Headers API the SDK uses. */
class UpstreamHeaders {
  constructor(private readonly raw: Dispatcher.ResponseData['headers']) {}

  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.raw)) yield [name, this.get(name) ?? ''];
  }

  forEach(callback: (value: string, name: string) => void): void {
    for (const [name, value] of this.entries()) callback(value, name);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

class UpstreamResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly statusText = '';
  readonly headers: UpstreamHeaders;
  readonly body: Dispatcher.ResponseData['body'];

  constructor(
    readonly url: string,
    answer: Dispatcher.ResponseData,
  ) {
    this.status = answer.statusCode;
    this.ok = answer.statusCode >= 200 && answer.statusCode < 300;
    this.headers = new UpstreamHeaders(answer.headers);
    this.body = answer.body;
  }

  json(): Promise<unknown> {
    return this.body.json();
  }

  text(): Promise<string> {
    return this.body.text();
  }
}
