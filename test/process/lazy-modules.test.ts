import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../support/redis-server';

const projectRoot = path.resolve(__dirname, '../..');

/** Starts the built app in a fresh Node process and lists which of `packages` it loaded. */
async function packagesLoadedAtStart(env: Record<string, string>, packages: readonly string[]): Promise<string[]> {
  const script = `
    require('reflect-metadata');
    const { createApp } = require('./dist/src/app');
    const { loadConfig } = require('./dist/src/config');
    createApp(loadConfig(process.env)).then(async (app) => {
      await app.listen();
      const loaded = Object.keys(require.cache);
      const wanted = ${JSON.stringify(packages)};
      process.stdout.write(JSON.stringify(wanted.filter((name) => loaded.some((file) => file.includes('/node_modules/' + name + '/')))));
      await app.close();
    });`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      LOG_LEVEL: 'silent',
      MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')),
      ...env,
    },
  });
  return JSON.parse(stdout) as string[];
}

describe('what start-up loads', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.stop());

  it('loads neither the Redis client without REDIS_URL, nor a tokenizer, nor the WebSocket server, nor prom-client before one is needed', async () => {
    expect(await packagesLoadedAtStart({ ACCESS_LOG: 'off' }, ['ioredis', 'gpt-tokenizer', 'ws', 'prom-client'])).toEqual([]);
  });

  it('loads the Redis client when REDIS_URL is set', async () => {
    expect(await packagesLoadedAtStart({ REDIS_URL: redis.url }, ['ioredis'])).toEqual(['ioredis']);
  });
});
