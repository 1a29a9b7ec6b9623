import type { Logger } from '../../logger';
import { MemoryRateLimitStore } from './memory-rate-limit-store';
import type { RateLimitStore } from './rate-limiter';
import { RedisRateLimitStore } from './redis-rate-limit-store';

export interface RateLimitStoreSettings {
  /** Shared buckets for several replicas; in memory without it. */
  readonly redisUrl: string | undefined;
}

/** Redis when a URL is configured, else this process's memory. `close()` releases either. */
export function createRateLimitStore(settings: RateLimitStoreSettings, logger: Logger): RateLimitStore {
  if (!settings.redisUrl) return new MemoryRateLimitStore();
  // Required here, not imported: without REDIS_URL, ioredis would cost start-up time and memory for nothing.
  const { Redis } = require('ioredis') as typeof import('ioredis');
  // Fail fast rather than queue: a call waiting on a dead Redis is let through unlimited instead (OperationRateLimiter).
  const redis = new Redis(settings.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', (error: Error) => logger.error({ err: error.message }, 'redis connection error'));
  return new RedisRateLimitStore(redis);
}
