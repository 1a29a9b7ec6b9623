import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Store } from 'graphql-rate-limit';

type Identity = Parameters<Store['getForIdentity']>[0];

/**
 * Stores for graphql-rate-limit that make its check atomic. The library reads the caller's timestamps,
 * decides, then writes them back: concurrent calls (or replicas) that read the same count all pass.
 * Here the read also records the call, in one step, so each call sees every call before it; the
 * library's write-back becomes unnecessary. Refused calls are recorded too, so a caller that keeps
 * hammering stays limited until it pauses for a window.
 */
export interface ReservingStore extends Store {
  /** The timestamps within the window, without recording a call (for the X-RateLimit headers). */
  peek(identity: Identity): Promise<readonly number[]>;
}

const keyOf = (identity: Identity): string => `llmop:ratelimit:${identity.contextIdentity}:${identity.fieldIdentity}`;

export class ReservingMemoryStore extends Store implements ReservingStore {
  private readonly calls = new Map<string, number[]>();

  constructor(private readonly windowMs: number) {
    super();
  }

  getForIdentity(identity: Identity): readonly number[] {
    const now = Date.now();
    const key = keyOf(identity);
    const live = (this.calls.get(key) ?? []).filter((timestamp) => timestamp + this.windowMs > now);
    this.calls.set(key, [...live, now]);
    return live;
  }

  setForIdentity(): void {
    // Recorded by getForIdentity already.
  }

  async peek(identity: Identity): Promise<readonly number[]> {
    const now = Date.now();
    return (this.calls.get(keyOf(identity)) ?? []).filter((timestamp) => timestamp + this.windowMs > now);
  }
}

// Drop calls older than the window, return the rest, record this call, and let the key expire with the window.
const reserveScript = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local existing = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return existing
`;

const scoresOf = (reply: unknown): number[] => {
  const flat = reply as string[];
  const scores: number[] = [];
  for (let index = 1; index < flat.length; index += 2) scores.push(Number(flat[index]));
  return scores;
};

/** Shared by every replica: one sorted set of call times per caller and operation, updated by a Lua script. */
export class ReservingRedisStore extends Store implements ReservingStore {
  constructor(
    private readonly redis: Redis,
    private readonly windowMs: number,
  ) {
    super();
  }

  async getForIdentity(identity: Identity): Promise<readonly number[]> {
    const now = Date.now();
    const reply = await this.redis.eval(reserveScript, 1, keyOf(identity), String(now), String(this.windowMs), `${now}:${randomUUID()}`);
    return scoresOf(reply);
  }

  setForIdentity(): void {
    // Recorded by getForIdentity already.
  }

  async peek(identity: Identity): Promise<readonly number[]> {
    const now = Date.now();
    const reply = await this.redis.zrangebyscore(keyOf(identity), now - this.windowMs + 1, '+inf', 'WITHSCORES');
    return scoresOf(reply);
  }
}
