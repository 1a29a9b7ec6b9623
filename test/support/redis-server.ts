/**
 * A Redis for tests that share rate-limit counters between gateway instances.
 *
 * - With `TEST_REDIS_URL` set (CI's service container), that server is used: a database index 1-15
 *   that no other Redis of this process holds, picked at random so parallel suites rarely meet, and
 *   flushed at start and at stop.
 * - Otherwise `/usr/bin/redis-server` is spawned on a free port on 127.0.0.1 without persistence,
 *   and killed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './polling';

export interface TestRedis {
  /** `redis://…/<db>`, for REDIS_URL. */
  readonly url: string;
  stop(): Promise<void>;
}

const REDIS_SERVER = '/usr/bin/redis-server';
const START_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client that fails fast instead of queueing or reconnecting, so a dead server shows at once. */
const quickClient = (url: string): Redis =>
  new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });

async function answersPing(url: string): Promise<boolean> {
  const client = quickClient(url);
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function flush(url: string): Promise<void> {
  const client = quickClient(url);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.flushdb();
  } finally {
    client.disconnect();
  }
}

/**
 * Databases held by this process's Redises. Concurrent tests of one file each need their own: two that
 * drew the same one shared their BullMQ queues (each test's replicas took the other's cases, found no such
 * run in their own database, and dropped them, so both runs stalled), and either one's stop flushed both.
 */
const heldDatabases = new Set<number>();

async function connectExternal(base: string): Promise<TestRedis> {
  const free = Array.from({ length: 15 }, (_, index) => index + 1).filter((index) => !heldDatabases.has(index));
  const database = free[Math.floor(Math.random() * free.length)];
  if (database === undefined) throw new Error('all 15 Redis databases of TEST_REDIS_URL are held by this process');
  heldDatabases.add(database);
  const parsed = new URL(base);
  parsed.pathname = `/${database}`;
  const url = parsed.toString();
  try {
    await flush(url);
  } catch (error) {
    heldDatabases.delete(database);
    throw error;
  }
  return {
    url,
    stop: async () => {
      await flush(url).catch(() => undefined);
      heldDatabases.delete(database);
    },
  };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function spawnOnce(): Promise<TestRedis | undefined> {
  const port = await freePort();
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const url = `redis://127.0.0.1:${port}/0`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return undefined; // e.g. the port was taken meanwhile: try another
    const failed = await Promise.race([spawnError, sleep(0).then(() => undefined)]);
    if (failed) throw new Error(`cannot start ${REDIS_SERVER}: ${failed.message}`);
    if (await answersPing(url)) {
      const stop = async (): Promise<void> => {
        const done = exited(child);
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await done;
        clearTimeout(timer);
      };
      return { url, stop };
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  await exited(child);
  throw new Error(`${REDIS_SERVER} did not answer PING on port ${port} within ${START_TIMEOUT_MS} ms\n${stderr}`);
}

/** A running Redis: TEST_REDIS_URL's (one database, flushed) or a fresh child process. */
export async function startRedis(): Promise<TestRedis> {
  const external = process.env.TEST_REDIS_URL?.trim();
  if (external) return connectExternal(external);
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await spawnOnce();
    if (started) return started;
  }
  throw new Error(`${REDIS_SERVER} exited at start three times (ports taken?)`);
}
