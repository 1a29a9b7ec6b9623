/** Counts requests being served, so shutdown can wait for them to finish. */
export class InFlightTracker {
  private count = 0;
  private readonly idleWaiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  begin(): () => void {
    this.count += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.count -= 1;
      if (this.count === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    };
  }

  /** Resolves true when nothing is in flight, false if `timeoutMs` passes first. */
  waitForIdle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
