export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerSettings {
  /** Consecutive failures that open the breaker. */
  readonly failureThreshold: number;
  /** How long an open breaker refuses calls before letting one probe through. */
  readonly halfOpenAfterMs: number;
  /** Milliseconds on a monotonic clock; injectable so tests can move time. */
  readonly now: () => number;
}

/** What a caller holds while its call runs through the breaker: exactly one of these settles it. */
export interface BreakerPermit {
  /** The endpoint answered (a request error such as 400 counts: the endpoint works). */
  succeeded(): void;
  /** The endpoint failed in a way that says it is unwell (connection, timeout, 429, 5xx). */
  failed(): void;
  /** The call ended without saying anything about the endpoint (the client left). */
  abandoned(): void;
}

/**
 * One endpoint's circuit breaker. Closed, it counts consecutive failures; at the threshold it opens and
 * refuses every call at once (callers go to the next endpoint rather than wait on this one). After
 * `halfOpenAfterMs` it lets exactly one probe through; others are still refused, not queued behind the
 * probe. The probe's success closes it, its failure opens it for another period.
 *
 * Written here rather than taken from cockatiel 3: its half-open breaker makes concurrent callers wait
 * for the probe (a stalled endpoint would hold them all), and it reads `Date.now()` directly.
 */
export class CircuitBreaker {
  private consecutiveFailures = 0;
  private openedAt: number | undefined;
  private probing = false;

  constructor(private readonly settings: BreakerSettings) {
    if (!Number.isInteger(settings.failureThreshold) || settings.failureThreshold < 1) {
      throw new RangeError(`CircuitBreaker needs a positive integer failureThreshold, got ${String(settings.failureThreshold)}`);
    }
  }

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed';
    return this.probing || this.settings.now() - this.openedAt >= this.settings.halfOpenAfterMs ? 'half_open' : 'open';
  }

  /** Milliseconds until an open breaker lets a probe through (0 when it would now). */
  get retryInMs(): number {
    if (this.openedAt === undefined) return 0;
    return Math.max(0, this.openedAt + this.settings.halfOpenAfterMs - this.settings.now());
  }

  /** A permit to call the endpoint, or undefined when the breaker refuses (open, or a probe is already out). */
  tryAcquire(): BreakerPermit | undefined {
    if (this.openedAt !== undefined) {
      if (this.probing || this.retryInMs > 0) return undefined;
      this.probing = true;
      return this.permit(true);
    }
    return this.permit(false);
  }

  private permit(probe: boolean): BreakerPermit {
    let settled = false;
    const settle = (outcome: 'succeeded' | 'failed' | 'abandoned'): void => {
      if (settled) return;
      settled = true;
      if (probe) this.probing = false;
      if (outcome === 'succeeded') {
        // Only the probe closes an open breaker: a slow call let through before it opened proves little.
        if (probe || this.openedAt === undefined) {
          this.consecutiveFailures = 0;
          this.openedAt = undefined;
        }
      } else if (outcome === 'failed') {
        this.consecutiveFailures += 1;
        // A failed probe opens it for another period; so do enough failures in a row while closed.
        if (probe || (this.openedAt === undefined && this.consecutiveFailures >= this.settings.failureThreshold)) {
          this.openedAt = this.settings.now();
        }
      }
      // An abandoned probe leaves the breaker open with its period over: the next call probes.
    };
    return {
      succeeded: () => settle('succeeded'),
      failed: () => settle('failed'),
      abandoned: () => settle('abandoned'),
    };
  }
}
