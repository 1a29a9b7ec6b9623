import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
// node-llama-cpp is an ES module with top-level await, which jest's CommonJS sandbox cannot import.
const counter = path.join(__dirname, 'llama-token-count.mjs');

/** Token count of `text` by llama.cpp for the model file, with and without the BOS token. */
export async function llamaTokenCount(modelPath: string, text: string): Promise<{ tokens: number; withBos: number }> {
  const { stdout } = await run(process.execPath, [counter, modelPath, text], { cwd: path.resolve(__dirname, '../..') });
  return JSON.parse(stdout) as { tokens: number; withBos: number };
}
