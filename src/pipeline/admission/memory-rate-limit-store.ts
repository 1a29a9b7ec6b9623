import { admit, type BucketState, emptyAt, type RateLimitDecision, type RateLimitStore } from './rate-limiter';

export interface MemoryRateLimitStoreOptions {
  /** Epoch ms; injected by tests. */
  readonly now?: () => number;
  /** How often the store looks for empty buckets on its own, for when no calls arrive to do it. */
  readonly sweepIntervalMs?: number;
}

interface Bucket extends BucketState {
  readonly emptyAt: number;
}

/**
 * Buckets each call examines for forgetting. More than the one bucket a call can add, so a full pass over
 * the map takes at most size / 2 calls, and the map holds at most about twice the callers of one window.
 */
const EXAMINED_PER_CALL = 3;
/** Buckets one timer tick examines: a bounded pause (well under a millisecond) however large the map. */
const EXAMINED_PER_TICK = 10_000;

/** One process's buckets. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, Bucket>();
  /** Where forgetting resumes: a live iterator that sees deletions and later additions. */
  private cursor: MapIterator<[string, Bucket]> = this.buckets.entries();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: MemoryRateLimitStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.forgetEmpty(this.now(), EXAMINED_PER_TICK), options.sweepIntervalMs ?? 1000);
    // Never keeps the process alive on its own.
    this.sweeper.unref();
  }

  /** Buckets held: callers admitted within roughly their last window. */
  get size(): number {
    return this.buckets.size;
  }

  async consume(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    const now = this.now();
    const { decision, next } = admit(this.buckets.get(key), now, limit, windowMs);
    // Fields copied one by one: an object spread here costs more than the rest of the call.
    if (decision.allowed && next) this.buckets.set(key, { level: next.level, updatedAt: next.updatedAt, emptyAt: emptyAt(next, limit) });
    this.forgetEmpty(now, EXAMINED_PER_CALL);
    return decision;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.buckets.clear();
  }

  /**
   * Examines the next `count` buckets in a round-robin pass and drops the empty ones. A dropped bucket
   * is indistinguishable from a missing one, so forgetting never changes a decision.
   */
  private forgetEmpty(now: number, count: number): void {
    const examining = Math.min(count, this.buckets.size);
    for (let examined = 0; examined < examining; examined++) {
      let entry = this.cursor.next();
      if (entry.done) {
        this.cursor = this.buckets.entries();
        entry = this.cursor.next();
        if (entry.done) return;
      }
      const [key, bucket] = entry.value;
      if (bucket.emptyAt <= now) this.buckets.delete(key);
    }
  }
}
