import { copyFile, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { demoModelPresets } from '../../scripts/gguf/demo-model';
import { spawnServer, type SpawnedServer } from '../support/spawn-server';
import { writeDemoModelFixture } from './demo-model-fixture';

// Local inference runs in a real server process: node-llama-cpp cannot load inside jest's sandbox.
// The server logs every model load and unload; the tests count them in its output.

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly error?: string;
}

interface ModelLogLine {
  readonly msg: string;
  readonly model: string;
  readonly version: string;
  readonly reason?: string;
}

let modelsDir: string;
let server: SpawnedServer;
let url: string;

async function generate(model: string, prompt: string, maxTokens: number): Promise<Answer> {
  const response = await fetch(`${url}/api/v1/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model_id: model, prompt, max_tokens: maxTokens, temperature: 0 }),
  });
  const body = (await response.json()) as { text?: string; error?: string };
  return { status: response.status, text: body.text ?? '', error: body.error };
}

/** What status and model listings do: both list the models directory. */
async function checkStatusAndModels(): Promise<void> {
  const [status, models] = await Promise.all([fetch(`${url}/api/v1/status`), fetch(`${url}/api/v1/models`)]);
  expect(status.status).toBe(200);
  expect(models.status).toBe(200);
  await Promise.all([status.json(), models.json()]);
}

/** The server's model load and unload log lines for one model, in order. */
function modelLog(model: string): ModelLogLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"local model'))
    .map((line) => JSON.parse(line) as ModelLogLine)
    .filter((line) => line.model === model);
}

const loadsOf = (model: string) => modelLog(model).filter((line) => line.msg === 'local model loaded');
const unloadsOf = (model: string) => modelLog(model).filter((line) => line.msg === 'local model unloaded');

async function eventually(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Tracks whether a request has answered yet. */
function track<T>(promise: Promise<T>): { readonly promise: Promise<T>; readonly settled: () => boolean } {
  let settled = false;
  void promise.finally(() => {
    settled = true;
  });
  return { promise, settled: () => settled };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The bench preset is big enough that a long greedy generation takes seconds on one thread,
// so the file can be replaced while generations run. A different seed gives different weights.
const nextVersion = { ...demoModelPresets.bench, seed: 7_654_321, name: 'llmop-demo-bench-v2' };

beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'llmop-replace-'));
  await writeDemoModelFixture(path.join(modelsDir, 'swap.gguf'), demoModelPresets.bench);
  // Not a .gguf name, so the directory does not list it until it is renamed over swap.gguf.
  await writeDemoModelFixture(path.join(modelsDir, 'swap.next'), nextVersion);
  server = spawnServer({ MODELS_DIR: modelsDir, LOCAL_THREADS: '1', LOCAL_SEQUENCES: '2', LOG_LEVEL: 'info' });
  url = await server.listening;
}, 60_000);

afterAll(async () => {
  server?.child.kill('SIGTERM');
  if (server) expect(await server.exited).toBe(0);
  await rm(modelsDir, { recursive: true, force: true });
});

describe('a local model file replaced or removed while it generates', () => {
  it('finishes running generations on the old model, serves new requests from the new file loaded once, and disposes the old model once', async () => {
    const longPrompt = 'The weather today is';
    const shortPrompt = 'GraphQL schemas describe';
    const oldShort = await generate('swap', shortPrompt, 8);
    expect(oldShort.status).toBe(200);
    const startedAt = performance.now();
    const oldLong = await generate('swap', longPrompt, 300);
    const longMs = performance.now() - startedAt;
    expect(oldLong.status).toBe(200);
    expect(loadsOf('swap')).toHaveLength(1);

    // Three long generations on the old file: two decode, the third waits for a sequence.
    const running = Array.from({ length: 3 }, () => track(generate('swap', longPrompt, 300)));
    await sleep(longMs / 4);
    await rename(path.join(modelsDir, 'swap.next'), path.join(modelsDir, 'swap.gguf'));

    const [newAnswers] = await Promise.all([
      Promise.all(Array.from({ length: 4 }, () => generate('swap', shortPrompt, 8))),
      checkStatusAndModels(),
      checkStatusAndModels(),
    ]);
    const oldStillRunning = running.map((request) => request.settled() === false);
    const loadsMeanwhile = loadsOf('swap').length;
    const unloadsMeanwhile = unloadsOf('swap').length;
    await checkStatusAndModels();

    const oldAnswers = await Promise.all(running.map((request) => request.promise));
    expect(oldAnswers.map((answer) => answer.error ?? answer.status)).toEqual([200, 200, 200]);
    expect(oldAnswers.map((answer) => answer.text)).toEqual([oldLong.text, oldLong.text, oldLong.text]);
    expect(newAnswers.map((answer) => answer.error ?? answer.status)).toEqual([200, 200, 200, 200]);
    const newText = newAnswers[0]?.text;
    expect(new Set(newAnswers.map((answer) => answer.text))).toEqual(new Set([newText]));
    expect(newText).not.toBe(oldShort.text);
    // The new requests did not wait for the old model to drain; both versions were in memory meanwhile.
    expect(oldStillRunning).toEqual([true, true, true]);
    expect({ loadsMeanwhile, unloadsMeanwhile }).toEqual({ loadsMeanwhile: 2, unloadsMeanwhile: 0 });

    await eventually(() => unloadsOf('swap').length > 0);
    const [oldVersion, newVersion] = loadsOf('swap').map((line) => line.version);
    expect(oldVersion).not.toBe(newVersion);
    expect(unloadsOf('swap')).toEqual([expect.objectContaining({ version: oldVersion, reason: 'replaced' })]);
    // Still one load of the new file: it keeps serving the same text.
    expect((await generate('swap', shortPrompt, 8)).text).toBe(newText);
    await checkStatusAndModels();
    expect(loadsOf('swap')).toHaveLength(2);
    expect(unloadsOf('swap')).toHaveLength(1);
    const listed = (await (await fetch(`${url}/api/v1/models`)).json()) as { models: Array<{ id: string; name: string }> };
    expect(listed.models.find((model) => model.id === 'swap')?.name).toBe(nextVersion.name);
  }, 90_000);

  it('keeps a model whose file is removed until its generation ends, through status calls, then disposes it', async () => {
    await copyFile(path.join(modelsDir, 'swap.gguf'), path.join(modelsDir, 'gone.gguf'));
    const warm = await generate('gone', 'warm up', 2);
    expect(warm.status).toBe(200);
    const startedAt = performance.now();
    const reference = await generate('gone', 'A long answer about rain', 300);
    const longMs = performance.now() - startedAt;

    const running = track(generate('gone', 'A long answer about rain', 300));
    await sleep(longMs / 4);
    await rename(path.join(modelsDir, 'gone.gguf'), path.join(modelsDir, 'gone.removed'));
    await checkStatusAndModels();
    await checkStatusAndModels();
    const refused = await generate('gone', 'hello', 2);
    const stillRunning = !running.settled();
    const unloadsMeanwhile = unloadsOf('gone').length;

    const answer = await running.promise;
    expect(answer).toEqual({ status: 200, text: reference.text, error: undefined });
    expect(refused.status).toBe(404);
    expect({ stillRunning, unloadsMeanwhile }).toEqual({ stillRunning: true, unloadsMeanwhile: 0 });
    await eventually(() => unloadsOf('gone').length > 0);
    expect(loadsOf('gone')).toHaveLength(1);
    expect(unloadsOf('gone')).toEqual([expect.objectContaining({ reason: 'removed' })]);
  }, 90_000);
});
