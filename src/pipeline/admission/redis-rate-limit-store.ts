import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RateLimitDecision, RateLimitStore } from './rate-limiter';

/**
 * `admit` (rate-limiter.ts) as one Lua script, so reading, deciding and writing a bucket is one atomic
 * step for every replica. The clock is Redis's own (`TIME`): replicas' clocks drift apart, and a bucket
 * drained by two clocks would admit too much or too little; one clock for all keeps them exact.
 * (`TIME` before a write needs Redis >= 5, where scripts replicate their effects.) Numbers are written
 * with %.0f: Lua's default conversion keeps only 14 significant digits. The key expires when the bucket
 * is empty, at most one window after its last admission; refused calls write nothing.
 * KEYS[1] the bucket; ARGV[1] the limit; ARGV[2] the window in ms.
 * Returns { allowed (1|0), remaining, resetAt (epoch ms), retryAfterMs }.
 */
const gcraScript = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local capacity = limit * window
local stored = redis.call('HMGET', KEYS[1], 'level', 'updated_at')
local level = 0
local updated_at = now
if stored[1] and stored[2] then
  updated_at = tonumber(stored[2])
  local elapsed = math.min(math.max(0, now - updated_at), window)
  level = math.max(0, tonumber(stored[1]) - elapsed * limit)
end
local allowed = level + window <= capacity
local after = level
local retry_after = 0
if allowed then
  after = level + window
  redis.call('HSET', KEYS[1], 'level', string.format('%.0f', after), 'updated_at', string.format('%.0f', math.max(now, updated_at)))
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(after / limit)))
else
  retry_after = math.ceil((level + window - capacity) / limit)
end
return { allowed and 1 or 0, math.floor((capacity - after) / window), now + math.ceil(after / limit), retry_after }
`;

const gcraScriptSha = createHash('sha1').update(gcraScript).digest('hex');

/** Buckets shared by every replica through one Redis: one EVALSHA per call (EVAL once after a restart or flush). */
export class RedisRateLimitStore implements RateLimitStore {
  /** Owns `redis`: `close()` quits it. */
  constructor(private readonly redis: Redis) {}

  async consume(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    const reply = await this.runScript(key, String(limit), String(windowMs));
    if (!Array.isArray(reply) || reply.length !== 4) throw new Error(`rate-limit script returned ${JSON.stringify(reply)}`);
    const [allowed, remaining, resetAt, retryAfterMs] = reply.map(Number) as [number, number, number, number];
    return { allowed: allowed === 1, limit, remaining, resetAt, retryAfterMs };
  }

  async close(): Promise<void> {
    // quit() waits for pending replies; a client that never connected has nothing to wait for.
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async runScript(key: string, limit: string, windowMs: string): Promise<unknown> {
    try {
      return await this.redis.evalsha(gcraScriptSha, 1, key, limit, windowMs);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      // EVAL also loads the script into the cache, so the next call's EVALSHA finds it.
      return this.redis.eval(gcraScript, 1, key, limit, windowMs);
    }
  }
}
