import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The compiled entry point (tsc's output); the scripts beside it in dist/ are found from it. */
export const builtMain = path.resolve(__dirname, '../../dist/src/main.js');
/** What `npm start` runs: the entry point, which loads the server bundled into one file (scripts/bundle.ts). */
export const serverEntry = path.resolve(__dirname, '../../dist/src/start.js');
const bundledServer = path.resolve(__dirname, '../../dist/llmop.js');

export interface SpawnedServer {
  readonly child: ChildProcessWithoutNullStreams;
  readonly output: () => string;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  /** Resolves with the URL once the server logs that it listens. */
  readonly listening: Promise<string>;
}

/**
 * Runs the built server (`npm test` builds it first) as a real process; its ledger lives in a fresh DATA_DIR unless `env`
 * names one. `nodeArguments` go before the entry point (a `--require` of a probe, say); `entry` is what `npm start` runs
 * unless another is named (`builtMain`, the unbundled build).
 */
export function spawnServer(
  env: Record<string, string>,
  nodeArguments: readonly string[] = [],
  entry: string = serverEntry,
): SpawnedServer {
  const needed = entry === serverEntry ? bundledServer : entry;
  if (!existsSync(needed)) throw new Error(`${needed} is missing: run "npm run build" (npm test does)`);
  const child = spawn(process.execPath, [...nodeArguments, entry], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-data-')),
      ...env,
    },
    stdio: 'pipe',
  });
  let output = '';
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match?.[1]) resolve(match[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', () => reject(new Error(`server exited before listening:\n${output}`)));
  });
  listening.catch(() => undefined);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => output, exited, listening };
}
