/**
 * The rate-limit engine on its own: GCRA in memory (with an injected clock) and as one Lua script in a
 * real Redis. Exact at N+1, Retry-After exact to the millisecond, refused calls not counted, idle
 * callers forgotten, one small entry per caller whatever the flood.
 */
import { Redis } from 'ioredis';
import { MemoryRateLimitStore } from '../../src/pipeline/admission/memory-rate-limit-store';
import { RateLimiter, type RateLimitDecision } from '../../src/pipeline/admission/rate-limiter';
import { RedisRateLimitStore } from '../../src/pipeline/admission/redis-rate-limit-store';
import { startRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A memory store on a clock the test moves by hand. */
function manualClock(start = 1_700_000_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

async function consumeMany(
  limiter: RateLimiter,
  count: number,
  caller: string,
  operation: string,
  limit: number,
): Promise<RateLimitDecision[]> {
  const decisions: RateLimitDecision[] = [];
  for (let i = 0; i < count; i++) decisions.push(await limiter.consume(caller, operation, limit));
  return decisions;
}

describe('in memory', () => {
  const stores: MemoryRateLimitStore[] = [];
  const setUp = (windowMs: number) => {
    const clock = manualClock();
    const store = new MemoryRateLimitStore({ now: clock.now });
    stores.push(store);
    return { clock, store, limiter: new RateLimiter(store, windowMs) };
  };
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  it.each([
    [1, 1000],
    [3, 1500],
    [7, 1000],
    [100, 60_000],
    [20_011, 60_000],
  ])('admits exactly %i calls in one instant and refuses the next (window %i ms)', async (limit, windowMs) => {
    const { limiter } = setUp(windowMs);
    const decisions = await consumeMany(limiter, limit + 1, 'caller', 'generate', limit);
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(limit);
    expect(decisions[limit - 1]).toMatchObject({ allowed: true, remaining: 0, retryAfterMs: 0 });
    expect(decisions[limit]).toMatchObject({ allowed: false, remaining: 0 });
  });

  it('counts remaining down from limit - 1 and says when the bucket is full again', async () => {
    const { clock, limiter } = setUp(1500);
    const start = clock.now();
    const decisions = await consumeMany(limiter, 3, 'caller', 'generate', 3);
    expect(decisions).toEqual([
      { allowed: true, limit: 3, remaining: 2, resetAt: start + 500, retryAfterMs: 0 },
      { allowed: true, limit: 3, remaining: 1, resetAt: start + 1000, retryAfterMs: 0 },
      { allowed: true, limit: 3, remaining: 0, resetAt: start + 1500, retryAfterMs: 0 },
    ]);
    expect(await limiter.consume('caller', 'generate', 3)).toEqual({
      allowed: false,
      limit: 3,
      remaining: 0,
      resetAt: start + 1500,
      retryAfterMs: 500,
    });
  });

  it('refuses at t with retryAfterMs, still refuses a millisecond before t + retryAfterMs, and admits at t + retryAfterMs', async () => {
    const { clock, limiter } = setUp(1000);
    await consumeMany(limiter, 7, 'caller', 'generate', 7);
    clock.advance(40);
    const refused = await limiter.consume('caller', 'generate', 7);
    // One cell frees every 1000/7 ms, the first at 142.86 ms after the burst: ceil(142.86 - 40) = 103.
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 103 });
    clock.advance(refused.retryAfterMs - 1);
    expect(await limiter.consume('caller', 'generate', 7)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    clock.advance(1);
    expect(await limiter.consume('caller', 'generate', 7)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('admits one call per emission interval to a caller that keeps the bucket full', async () => {
    const { clock, limiter } = setUp(60_000);
    await consumeMany(limiter, 100, 'caller', 'generate', 100);
    for (let round = 0; round < 5; round++) {
      clock.advance(600);
      expect((await limiter.consume('caller', 'generate', 100)).allowed).toBe(true);
      expect(await limiter.consume('caller', 'generate', 100)).toMatchObject({ allowed: false, retryAfterMs: 600 });
    }
  });

  it('does not count refused calls: 100,000 of them leave one entry and do not delay the next admission', async () => {
    const { clock, store, limiter } = setUp(60_000);
    await consumeMany(limiter, 100, 'flooder', 'generate', 100);
    const refusals = await consumeMany(limiter, 100_000, 'flooder', 'generate', 100);
    expect(refusals.every((decision) => !decision.allowed)).toBe(true);
    expect(store.size).toBe(1);
    clock.advance(600);
    expect(await limiter.consume('flooder', 'generate', 100)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('serves the whole limit again once the window has passed', async () => {
    const { clock, limiter } = setUp(1500);
    await consumeMany(limiter, 4, 'caller', 'generate', 3);
    clock.advance(1500);
    const decisions = await consumeMany(limiter, 4, 'caller', 'generate', 3);
    expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
  });

  it('keeps one bucket per caller and per operation', async () => {
    const { limiter } = setUp(1000);
    await consumeMany(limiter, 2, 'first', 'generate', 2);
    expect((await limiter.consume('first', 'generate', 2)).allowed).toBe(false);
    expect(await limiter.consume('second', 'generate', 2)).toMatchObject({ allowed: true, remaining: 1 });
    expect(await limiter.consume('first', 'models', 2)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('does not grow with rotating callers: each is forgotten soon after its window has passed', async () => {
    const { clock, store, limiter } = setUp(1000);
    let largest = 0;
    for (let caller = 0; caller < 20_000; caller++) {
      // Limit 1: each caller's bucket stays full for its whole window.
      await limiter.consume(`address:${caller}`, 'health', 1);
      largest = Math.max(largest, store.size);
      clock.advance(1);
    }
    // One new caller per ms: 1000 in any window; the rest are forgotten within a pass over the map.
    expect(largest).toBeGreaterThanOrEqual(1000);
    expect(largest).toBeLessThanOrEqual(2000);
  });

  it('forgets idle callers on its own when no calls arrive, once their window has passed', async () => {
    const clock = manualClock();
    const store = new MemoryRateLimitStore({ now: clock.now, sweepIntervalMs: 10 });
    stores.push(store);
    const limiter = new RateLimiter(store, 1000);
    for (let caller = 0; caller < 100; caller++) await limiter.consume(`address:${caller}`, 'health', 1);
    clock.advance(999);
    await sleep(50);
    expect(store.size).toBe(100);
    clock.advance(1);
    await sleep(50);
    expect(store.size).toBe(0);
  });

  it('forgets a surge of callers as later calls arrive, without a sweep', async () => {
    const { clock, store, limiter } = setUp(1000);
    for (let caller = 0; caller < 1000; caller++) await limiter.consume(`address:${caller}`, 'health', 5);
    expect(store.size).toBe(1000);
    clock.advance(1000);
    for (let call = 0; call < 500; call++) await limiter.consume('regular', 'health', 1_000_000);
    expect(store.size).toBe(1);
  });

  it('refuses a limit it cannot count exactly, saying why', async () => {
    const { limiter } = setUp(60_000);
    await expect(limiter.consume('caller', 'generate', 0)).rejects.toThrow('limit must be a whole number >= 1');
    await expect(limiter.consume('caller', 'generate', 2 ** 40)).rejects.toThrow('limit * windowMs <= 2^53 - 1');
    expect(() => new RateLimiter(new MemoryRateLimitStore(), 0)).toThrow('windowMs must be a whole number of milliseconds >= 1');
  });
});

describe('in Redis', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  };
  /** A limiter as a replica holds it: its own connection to the shared Redis. */
  const replica = (windowMs: number) => new RateLimiter(new RedisRateLimitStore(connect()), windowMs);

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.quit()));
    await redis?.stop();
  });

  it('admits exactly N of N+1 simultaneous calls spread over two replicas', async () => {
    const [first, second] = [replica(60_000), replica(60_000)];
    const decisions = await Promise.all(
      Array.from({ length: 11 }, (_, index) => (index % 2 ? first : second).consume('burst', 'generate', 10)),
    );
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(10);
    expect(decisions.map((decision) => decision.remaining).sort((a, b) => a - b)).toEqual([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('refuses with the exact wait, and admits the call made after waiting it', async () => {
    const limiter = replica(600);
    await consumeMany(limiter, 3, 'patient', 'generate', 3);
    const refused = await limiter.consume('patient', 'generate', 3);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(150);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(200);
    await sleep(refused.retryAfterMs);
    expect(await limiter.consume('patient', 'generate', 3)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('reports resetAt on the Redis clock, at most one window ahead', async () => {
    const limiter = replica(1500);
    const before = Date.now();
    const decision = await limiter.consume('reader', 'models', 3);
    expect(decision).toMatchObject({ allowed: true, limit: 3, remaining: 2, retryAfterMs: 0 });
    // Redis runs on this machine, so its clock is ours.
    expect(decision.resetAt).toBeGreaterThanOrEqual(before + 500);
    expect(decision.resetAt).toBeLessThanOrEqual(Date.now() + 500);
  });

  it('keeps one small key per caller that expires when its bucket is empty, whatever the flood', async () => {
    const limiter = replica(60_000);
    const inspector = connect();
    await consumeMany(limiter, 5, 'flooder', 'generate', 5);
    const refusals = await Promise.all(Array.from({ length: 10_000 }, () => limiter.consume('flooder', 'generate', 5)));
    expect(refusals.every((decision) => !decision.allowed)).toBe(true);
    const key = 'llmop:ratelimit:generate:flooder';
    expect(await inspector.keys(`${key}*`)).toEqual([key]);
    expect(await inspector.hlen(key)).toBe(2);
    // Set by the last admission (a full bucket empties in one window); the refusals did not extend it.
    const ttl = await inspector.pttl(key);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('forgets an idle caller: its key is gone once its window has passed', async () => {
    const limiter = replica(300);
    const inspector = connect();
    await limiter.consume('idle', 'generate', 3);
    expect(await inspector.exists('llmop:ratelimit:generate:idle')).toBe(1);
    await sleep(350);
    expect(await inspector.exists('llmop:ratelimit:generate:idle')).toBe(0);
  });

  it('loads its script again after Redis forgets it', async () => {
    const limiter = replica(60_000);
    expect((await limiter.consume('reloader', 'status', 2)).allowed).toBe(true);
    await connect().script('FLUSH');
    expect(await limiter.consume('reloader', 'status', 2)).toMatchObject({ allowed: true, remaining: 0 });
    expect((await limiter.consume('reloader', 'status', 2)).allowed).toBe(false);
  });

  it('fails the call, rather than waiting, when Redis cannot be reached', async () => {
    const unreachable = new Redis('redis://127.0.0.1:1/0', {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    unreachable.on('error', () => undefined);
    const limiter = new RateLimiter(new RedisRateLimitStore(unreachable), 60_000);
    await expect(limiter.consume('caller', 'generate', 3)).rejects.toThrow();
    unreachable.disconnect();
  });
});
