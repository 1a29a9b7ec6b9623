/**
 * One generation's time budget, counted from admission: time queued for a slot, retries and the
 * upstream call all spend it. One AbortController and one timer, both released by `dispose()`:
 * `AbortSignal.timeout()` would keep every request's signal and listeners alive until it fires.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly expiresAt: number;
  private timedOut = false;

  constructor(
    readonly timeoutMs: number,
    private readonly clientSignal?: AbortSignal,
  ) {
    this.expiresAt = performance.now() + timeoutMs;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    if (clientSignal?.aborted) this.controller.abort(clientSignal.reason);
    else clientSignal?.addEventListener('abort', this.onClientAbort, { once: true });
  }

  /** Aborts when the deadline passes or the client goes away. */
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
    this.clientSignal?.removeEventListener('abort', this.onClientAbort);
  }

  private readonly onClientAbort = (): void => {
    this.controller.abort(this.clientSignal?.reason);
  };
}
