/**
 * The rate-limit engine: GCRA (the generic cell rate algorithm), one small state per caller and
 * operation, so a call costs the same whatever the limit, the window or the flood. Burst = the limit;
 * each admitted call holds one cell for one emission interval (window / limit). Refused calls change
 * nothing. Surfaces call `RateLimiter.consume`; GraphQL reaches it through graphql-rate-limit.
 */

/** What one call to the limiter decided, with the figures for the X-RateLimit-* and Retry-After headers. */
export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  /** Calls that would still pass right now, after this one. */
  readonly remaining: number;
  /** Epoch ms at which the bucket is full again (all `limit` calls available). */
  readonly resetAt: number;
  /** 0 when allowed; otherwise the exact ms until the next call would pass. */
  readonly retryAfterMs: number;
}

/** Where the buckets live. One atomic step per call: concurrent calls and replicas each see the calls before them. */
export interface RateLimitStore {
  /** Admits one call under `limit` calls per `windowMs` for `key`, or refuses it without recording anything. */
  consume(key: string, limit: number, windowMs: number): Promise<RateLimitDecision>;
  /** Releases timers and connections. */
  close(): Promise<void>;
}

/**
 * One bucket, in GCRA's continuous-state form (ITU-T I.371, equivalent to the "theoretical arrival
 * time" form): each admitted call adds `windowMs` to `level`, which drains by `limit` per ms, so a cell
 * frees one emission interval after it was taken and `limit * windowMs` is a full bucket. Scaling by
 * `limit` keeps every quantity an integer: N calls in one instant fill exactly N cells, with no
 * floating-point drift at N+1 (exact while `limit * windowMs` <= 2^53, checked by RateLimiter).
 */
export interface BucketState {
  readonly level: number;
  /** Epoch ms of the last admitted call; `level` is as drained at that instant. */
  readonly updatedAt: number;
}

/** The GCRA step, shared by the memory store and mirrored line by line in the Redis store's Lua script. */
export function admit(
  state: BucketState | undefined,
  now: number,
  limit: number,
  windowMs: number,
): { decision: RateLimitDecision; next: BucketState | undefined } {
  const capacity = limit * windowMs;
  // A clock that steps back drains nothing; a whole window drains any bucket (and bounds the product).
  const elapsed = state ? Math.min(Math.max(0, now - state.updatedAt), windowMs) : windowMs;
  const level = state ? Math.max(0, state.level - elapsed * limit) : 0;
  const allowed = level + windowMs <= capacity;
  const after = allowed ? level + windowMs : level;
  const decision: RateLimitDecision = {
    allowed,
    limit,
    remaining: Math.floor((capacity - after) / windowMs),
    resetAt: now + Math.ceil(after / limit),
    retryAfterMs: allowed ? 0 : Math.ceil((level + windowMs - capacity) / limit),
  };
  const next = allowed ? { level: after, updatedAt: Math.max(now, state?.updatedAt ?? now) } : state;
  return { decision, next };
}

/** Epoch ms at which a bucket holds nothing and can be forgotten (at most one window after its last call). */
export const emptyAt = (state: BucketState, limit: number): number => state.updatedAt + Math.ceil(state.level / limit);

/** The limiter every surface calls: one bucket per caller and operation, one window for all. */
export class RateLimiter {
  constructor(
    private readonly store: RateLimitStore,
    readonly windowMs: number,
  ) {
    if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
      throw new RangeError(`RateLimiter: windowMs must be a whole number of milliseconds >= 1, got ${windowMs}`);
    }
  }

  /** Counts one call of `operation` by `callerId` against `limit` calls per window, unless refused. */
  consume(callerId: string, operation: string, limit: number): Promise<RateLimitDecision> {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit * this.windowMs > Number.MAX_SAFE_INTEGER) {
      return Promise.reject(
        new RangeError(
          `RateLimiter: limit must be a whole number >= 1 with limit * windowMs <= 2^53 - 1, got ${limit} per ${this.windowMs} ms`,
        ),
      );
    }
    // The operation first: it never contains ':', so no two (caller, operation) pairs share a key.
    return this.store.consume(`llmop:ratelimit:${operation}:${callerId}`, limit, this.windowMs);
  }
}
