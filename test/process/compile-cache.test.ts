/**
 * The start-up code cache (src/compile-cache.ts), in real Node processes: each run below is a fresh
 * process that enables the cache on a temporary directory, requires modules written for the test and
 * reports what it got and what the cache did. The last test starts the real server twice.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { poll } from '../support/polling';
import { spawnServer } from '../support/spawn-server';

const compileCacheModule = path.resolve(__dirname, '../../dist/src/compile-cache.js');

interface Run {
  readonly value: unknown;
  readonly report: { fromCache: number; compiled: number; written: number };
}

/** In a new process: enables the cache on `cacheDir`, requires `entry`, awaits its `value`, saves the cache. */
async function runWithCache(cacheDir: string, entry: string): Promise<Run> {
  const script = `
    const cache = require(${JSON.stringify(compileCacheModule)}).enableCompileCache(${JSON.stringify(cacheDir)});
    Promise.resolve(require(${JSON.stringify(entry)}).value).then((value) => {
      process.stdout.write(JSON.stringify({ value, report: cache.save() }));
    });`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '' } });
  return JSON.parse(stdout) as Run;
}

/** A directory of modules: `files` by name. */
function moduleDir(files: Record<string, string>): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-cc-modules-'));
  for (const [name, source] of Object.entries(files)) writeFileSync(path.join(directory, name), source);
  return directory;
}

const newCacheDir = (): string => path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-cc-')), 'cache');

describe('the start-up code cache', () => {
  it('serves a second start from the cache, and never serves an edited module stale, even one of the same length', async () => {
    const modules = moduleDir({
      'entry.js': "exports.value = require('./answer').answer + ' ' + require.resolve('./answer').endsWith('answer.js');",
      'answer.js': "exports.answer = 'first';",
    });
    const cacheDir = newCacheDir();
    const entry = path.join(modules, 'entry.js');

    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'first true', report: { fromCache: 0, compiled: 2, written: 2 } });
    expect(readdirSync(cacheDir)).toHaveLength(2);
    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'first true', report: { fromCache: 2, compiled: 0, written: 0 } });

    // Same length: V8's own check (the source's length) would take the old code.
    writeFileSync(path.join(modules, 'answer.js'), "exports.answer = 'other';");
    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'other true', report: { fromCache: 1, compiled: 1, written: 1 } });
    // The edited module's old entry went: one entry a module.
    expect(readdirSync(cacheDir)).toHaveLength(2);
    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'other true', report: { fromCache: 2, compiled: 0, written: 0 } });
  });

  it('compiles a module that uses import() (or starts with #!) from source, so its import still works after a cached start', async () => {
    const modules = moduleDir({
      'entry.js': "exports.value = require('./esm').load().then((os) => typeof os.platform + require('./cli').suffix);",
      'esm.js': "exports.load = () => import('node:os');",
      'cli.js': "#!/usr/bin/env node\nexports.suffix = '!';",
    });
    const cacheDir = newCacheDir();
    const entry = path.join(modules, 'entry.js');
    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'function!', report: { fromCache: 0, compiled: 1, written: 1 } });
    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'function!', report: { fromCache: 1, compiled: 0, written: 0 } });
  });

  it('recompiles and rewrites an entry V8 rejects, and runs without a cache it cannot write', async () => {
    const modules = moduleDir({ 'entry.js': "exports.value = 'still here';" });
    const entry = path.join(modules, 'entry.js');
    const cacheDir = newCacheDir();
    await runWithCache(cacheDir, entry);
    const [entryFile] = readdirSync(cacheDir);
    writeFileSync(path.join(cacheDir, entryFile!), 'not code from V8');
    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'still here', report: { fromCache: 0, compiled: 1, written: 1 } });
    expect(await runWithCache(cacheDir, entry)).toEqual({ value: 'still here', report: { fromCache: 1, compiled: 0, written: 0 } });

    // A file where the directory should be: nothing can be written, nothing fails.
    const blocked = path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-cc-')), 'cache');
    writeFileSync(blocked, '');
    expect(await runWithCache(blocked, entry)).toEqual({ value: 'still here', report: { fromCache: 0, compiled: 1, written: 0 } });
  });

  it('lets the server start from the cache its previous start wrote', async () => {
    const cacheDir = newCacheDir();
    const cacheLine = async (): Promise<{ fromCache: number; compiled: number; written: number }> => {
      const server = spawnServer({ COMPILE_CACHE_DIR: cacheDir, LOG_LEVEL: 'info', ACCESS_LOG: 'off' });
      try {
        await server.listening;
        const output = await poll(
          async () => server.output(),
          (text) => text.includes('start-up code cache'),
          10_000,
        );
        const line = output.split('\n').find((text) => text.includes('start-up code cache'));
        if (!line) throw new Error(`no start-up code cache line:\n${output}`);
        return (JSON.parse(line) as { compileCache: { fromCache: number; compiled: number; written: number } }).compileCache;
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    };
    const first = await cacheLine();
    expect(first.fromCache).toBe(0);
    expect(first.written).toBe(first.compiled);
    // The bundle and the packages it leaves out that start-up loads (graphql's modules among them).
    expect(first.compiled).toBeGreaterThan(100);
    expect(await cacheLine()).toEqual({ fromCache: first.compiled, compiled: 0, written: 0 });
  }, 30_000);
});
