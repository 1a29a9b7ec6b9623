import OpenAI, { type ClientOptions } from 'openai';

type Fetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * The `openai` client with the caller's signal as the only abort. On every call the SDK's own
 * `fetchWithTimeout` arms a timer and adds a listener to the caller's signal that aborts a controller
 * of its own, whose signal it hands to `fetch`; the generation's Deadline already times the call out
 * and is the caller's signal. So a call that brings a signal goes to `fetch` with that signal: no timer,
 * no listener, and the SDK's controller never creates its signal, which in Node 20 costs ~3-4 µs and
 * three hidden classes that V8 does not reuse. A stream the caller stops early is still cancelled:
 * leaving the response body's iterator destroys it, which aborts the request. Calls without a signal
 * keep the SDK's own timeout.
 */
export class SignalledOpenAI extends OpenAI {
  private readonly upstreamFetch: Fetch;

  constructor(options: ClientOptions & { readonly fetch: Fetch }) {
    super(options);
    this.upstreamFetch = options.fetch;
  }

  override async fetchWithTimeout(
    url: RequestInfo,
    init: RequestInit | undefined,
    ms: number,
    controller: AbortController,
  ): Promise<Response> {
    if (!init?.signal) return super.fetchWithTimeout(url, init, ms, controller);
    // The fields the fetch reads, in a fresh object: spreading `init` and overriding one of its keys would
    // turn the copy into a dictionary-mode object in V8.
    const { signal, headers, body } = init;
    return this.upstreamFetch(url as string | URL, { method: init.method?.toUpperCase() ?? 'GET', headers, body, signal });
  }
}
