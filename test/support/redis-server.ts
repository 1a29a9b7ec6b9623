/**
 * A Redis for tests that share rate-limit counters between gateway instances.
 *
 * - With `TEST_REDIS_URL` set (CI's service container), that server is used: a random database
 *   index 1-15 is picked so parallel suites rarely meet, and it is flushed at start and at stop.
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

async function connectExternal(base: string): Promise<TestRedis> {
  const parsed = new URL(base);
  parsed.pathname = `/${1 + Math.floor(Math.random() * 15)}`;
  const url = parsed.toString();
  await flush(url);
  return { url, stop: () => flush(url).catch(() => undefined) };
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
