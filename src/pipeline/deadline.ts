import { type AbortSource, ClientAbort, listenForAbort } from './client-abort';

/**
 * One generation's time budget, counted from admission: time queued for a slot, retries and the
 * upstream call all spend it. One AbortController and one timer, both released by `dispose()`:
 * `AbortSignal.timeout()` would keep every request's signal and listeners alive until it fires.
 * Its signal also aborts when any of `cancelledBy` does (the client going away, a stream stopped).
 */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly expiresAt: number;
  private timedOut = false;
  private readonly stopListening: (() => void)[] = [];

  constructor(
    readonly timeoutMs: number,
    cancelledBy: readonly (AbortSource | undefined)[] = [],
  ) {
    this.expiresAt = performance.now() + timeoutMs;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    for (const source of cancelledBy) {
      if (source && !this.controller.signal.aborted) this.stopListening.push(listenForAbort(source, () => this.cancel(source)));
    }
  }

  /** Aborts when the deadline passes, the client goes away or a source in `cancelledBy` aborts. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True once the time ran out (as opposed to the client leaving). */
  get expired(): boolean {
    return this.timedOut;
  }

  get remainingMs(): number {
    return Math.max(0, this.expiresAt - performance.now());
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const stop of this.stopListening.splice(0)) stop();
  }

  /** The source's reason when it has one (an AbortSignal's), so callers can tell why. */
  private cancel(source: AbortSource): void {
    this.controller.abort(source instanceof ClientAbort ? undefined : source.reason);
  }
}
