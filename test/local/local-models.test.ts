import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { demoModelPresets, writeDemoModel } from '../../scripts/gguf/demo-model';
import { llamaTokenCount } from '../support/llama-tokenizer';
import { spawnServer, type SpawnedServer } from '../support/spawn-server';
import { writeDemoModelFixture } from './demo-model-fixture';

// Local inference runs in a real server process: node-llama-cpp cannot load inside jest's sandbox.
interface Generated {
  status: number;
  body: any;
}

let modelsDir: string;
let server: SpawnedServer;
let url: string;

async function post(pathname: string, body: unknown): Promise<Generated> {
  const response = await fetch(`${url}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const generate = (body: Record<string, unknown>) => post('/api/v1/generate', { model_id: 'demo', ...body });

async function listModels(): Promise<any[]> {
  const response = await fetch(`${url}/api/v1/models`);
  return ((await response.json()) as { models: any[] }).models;
}

beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'llmop-local-'));
  await writeDemoModel(path.join(modelsDir, 'demo.gguf'), demoModelPresets.tiny);
  await writeDemoModel(path.join(modelsDir, 'demo-chat.gguf'), { ...demoModelPresets.tiny, chatTemplate: 'chatml', name: 'demo-chat' });
  await writeDemoModel(path.join(modelsDir, 'demo-stops.gguf'), { ...demoModelPresets.tiny, endOfTextGain: 4, name: 'demo-stops' });
  await writeFile(
    path.join(modelsDir, 'demo-chat.json'),
    JSON.stringify({
      name: 'Support bot (fine-tuned)',
      description: 'A ChatML fine-tune for support answers.',
      base_model: 'llmop-demo-tiny',
      capabilities: ['text-generation', 'chat'],
      pricing: { input_per_million: 1, output_per_million: 2 },
      fine_tuning: { dataset: 'support-tickets-v3', created_at: '2026-10-01', evaluation: { accuracy: 0.91, bleu: 0.42 } },
    }),
  );
  server = spawnServer({ MODELS_DIR: modelsDir, LOCAL_THREADS: '1', LOCAL_SEQUENCES: '3' });
  url = await server.listening;
});

afterAll(async () => {
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
  await rm(modelsDir, { recursive: true, force: true });
});

describe('local GGUF models', () => {
  it('lists every .gguf file as a fine-tuned local model, with its model card', async () => {
    const models = await listModels();
    const local = models.filter((model) => model.provider === 'local');
    expect(local.map((model) => model.id)).toEqual(['demo', 'demo-chat', 'demo-stops']);
    expect(local.find((model) => model.id === 'demo')).toMatchObject({
      name: 'llmop-demo-tiny',
      type: 'fine-tuned',
      status: 'available',
      api: 'completion',
      context_length: 512,
    });
    expect(local.find((model) => model.id === 'demo-chat')).toMatchObject({
      name: 'Support bot (fine-tuned)',
      description: 'A ChatML fine-tune for support answers.',
      base_model: 'llmop-demo-tiny',
      api: 'chat',
      capabilities: ['text-generation', 'chat'],
      pricing: { input_per_million: 1, output_per_million: 2 },
      fine_tuning: {
        dataset: 'support-tickets-v3',
        created_at: '2026-10-01',
        evaluation: [
          { metric: 'accuracy', value: 0.91 },
          { metric: 'bleu', value: 0.42 },
        ],
      },
    });
  });

  it('generates the same greedy text every time, and different text for a different prompt', async () => {
    const first = await generate({ prompt: 'The weather today is', max_tokens: 16, temperature: 0 });
    const second = await generate({ prompt: 'The weather today is', max_tokens: 16, temperature: 0 });
    const other = await generate({ prompt: 'GraphQL schemas describe', max_tokens: 16, temperature: 0 });
    expect(first.status).toBe(200);
    expect(first.body.text.length).toBeGreaterThan(0);
    expect(second.body.text).toBe(first.body.text);
    expect(other.body.text).not.toBe(first.body.text);
    expect(first.body.metadata).toMatchObject({ provider: 'local', upstream_model: 'demo', token_source: 'upstream' });
  });

  it('reproduces sampled text with the same seed and varies it with another seed', async () => {
    const request = { prompt: 'Language models', max_tokens: 24, temperature: 1.2, top_p: 0.95 };
    const seeded = await generate({ ...request, seed: 42 });
    const again = await generate({ ...request, seed: 42 });
    const reseeded = await generate({ ...request, seed: 7 });
    expect(seeded.status).toBe(200);
    expect(again.body.text).toBe(seeded.body.text);
    expect(reseeded.body.text).not.toBe(seeded.body.text);
  });

  it('honours max_tokens exactly with finish_reason length', async () => {
    for (const maxTokens of [1, 5, 33]) {
      const { body } = await generate({ prompt: 'Tell me about the weather', max_tokens: maxTokens, temperature: 0 });
      expect(body.metrics.output_tokens).toBe(maxTokens);
      expect(body.metadata.finish_reason).toBe('length');
    }
  });

  it('stops with finish_reason stop when the model ends the text, counting the end token', async () => {
    const prompts = ['Hello', 'The weather', 'GraphQL', 'Models are', 'Rain falls', 'Serving models'];
    const answers = await Promise.all(
      prompts.map((prompt) => post('/api/v1/generate', { model_id: 'demo-stops', prompt, max_tokens: 64, temperature: 0 })),
    );
    const stopped = answers.filter((answer) => answer.body.metadata.finish_reason === 'stop');
    expect(stopped.length).toBeGreaterThan(0);
    for (const answer of stopped) {
      expect(answer.body.metrics.output_tokens).toBeLessThan(64);
      expect(answer.body.text).not.toContain('<|end_of_text|>');
    }
  });

  it('counts prompt tokens with the model tokenizer, BOS included', async () => {
    const prompt = 'Fine-tuned models answer support questions, quickly and cheaply.';
    const reference = await llamaTokenCount(path.join(modelsDir, 'demo.gguf'), prompt);
    const { body } = await generate({ prompt, max_tokens: 4, temperature: 0 });
    expect(reference.withBos).toBe(reference.tokens + 1);
    expect(body.metrics.input_tokens).toBe(reference.withBos);
    expect(body.metrics.total_tokens).toBe(reference.withBos + 4);
  });

  it('uses the chat template for a model that has one, and prices it from its model card', async () => {
    const prompt = 'How do I reset my password?';
    const plain = await llamaTokenCount(path.join(modelsDir, 'demo-chat.gguf'), prompt);
    const { status, body } = await post('/api/v1/generate', { model_id: 'demo-chat', prompt, max_tokens: 10, temperature: 0 });
    expect(status).toBe(200);
    // The ChatML frame adds its own tokens around the user's message.
    expect(body.metrics.input_tokens).toBeGreaterThan(plain.withBos + 4);
    expect(body.metadata.cost_usd.input).toBeCloseTo((body.metrics.input_tokens * 1) / 1e6, 12);
    expect(body.metadata.cost_usd.output).toBeCloseTo((10 * 2) / 1e6, 12);
  });

  it('costs nothing for a local model without prices', async () => {
    const { body } = await generate({ prompt: 'Free', max_tokens: 3, temperature: 0 });
    expect(body.metadata.cost_usd).toEqual({ input: 0, output: 0, total: 0 });
  });

  it('answers 400 validation_error for a prompt longer than the model context', async () => {
    const { status, body } = await generate({ prompt: 'weather '.repeat(1000), max_tokens: 10 });
    expect(status).toBe(400);
    expect(body.error).toBe('validation_error');
    expect(body.details).toContain('context_length is 512');
  });

  it('answers concurrent requests correctly, beyond the sequence pool', async () => {
    const prompts = ['one', 'two words', 'three little words', 'four', 'five five', 'six'];
    const sequential: string[] = [];
    for (const prompt of prompts) sequential.push((await generate({ prompt, max_tokens: 12, temperature: 0 })).body.text);
    const concurrent = await Promise.all(prompts.map((prompt) => generate({ prompt, max_tokens: 12, temperature: 0 })));
    expect(concurrent.map((answer) => answer.status)).toEqual(prompts.map(() => 200));
    expect(concurrent.map((answer) => answer.body.text)).toEqual(sequential);
  });

  it('generates a batch on the local model, each prompt as it would alone', async () => {
    const prompts = ['The sky', 'A schema', 'Tokens and costs', 'Rain'];
    const alone = await Promise.all(prompts.map((prompt) => generate({ prompt, max_tokens: 8, temperature: 0 })));
    const { status, body } = await post('/api/v1/generate/batch', { model_id: 'demo', prompts, max_tokens: 8, temperature: 0 });
    expect(status).toBe(200);
    expect(body.results.map((result: any) => result.text)).toEqual(alone.map((answer) => answer.body.text));
    expect(body.metrics).toMatchObject({ successful_generations: 4, failed_generations: 0, output_tokens: 32 });
  });

  it('lists a corrupt file as unavailable with the reason, and keeps serving the others', async () => {
    await writeFile(path.join(modelsDir, 'broken.gguf'), 'this is not a model');
    try {
      const broken = (await listModels()).find((model) => model.id === 'broken');
      expect(broken).toMatchObject({ status: 'unavailable', status_reason: expect.stringContaining('not a valid GGUF file') });
      const refused = await generate({ model_id: 'broken', prompt: 'hello' });
      expect(refused.status).toBe(503);
      expect(refused.body.error).toBe('model_unavailable');
      expect((await generate({ prompt: 'still fine', max_tokens: 3 })).status).toBe(200);
    } finally {
      await rm(path.join(modelsDir, 'broken.gguf'));
    }
  });

  it('marks a truncated file unavailable once loading it fails, without crashing', async () => {
    const truncatedPath = path.join(modelsDir, 'truncated.gguf');
    await copyFile(path.join(modelsDir, 'demo.gguf'), truncatedPath);
    const size = (await readFile(truncatedPath)).length;
    await truncate(truncatedPath, Math.floor(size / 2));
    try {
      const refused = await generate({ model_id: 'truncated', prompt: 'hello', max_tokens: 3 });
      expect(refused.status).toBe(503);
      expect(refused.body.error).toBe('model_unavailable');
      const listed = (await listModels()).find((model) => model.id === 'truncated');
      expect(listed).toMatchObject({ status: 'unavailable', status_reason: expect.any(String) });
      expect((await generate({ prompt: 'still fine', max_tokens: 3 })).status).toBe(200);
    } finally {
      await rm(truncatedPath);
    }
  });

  it('shows a model file added while running in the next models call, and serves it', async () => {
    await copyFile(path.join(modelsDir, 'demo.gguf'), path.join(modelsDir, 'added-later.gguf'));
    try {
      expect((await listModels()).map((model) => model.id)).toContain('added-later');
      const { status, body } = await generate({ model_id: 'added-later', prompt: 'The weather today is', max_tokens: 16, temperature: 0 });
      expect(status).toBe(200);
      const original = await generate({ prompt: 'The weather today is', max_tokens: 16, temperature: 0 });
      expect(body.text).toBe(original.body.text);
    } finally {
      await rm(path.join(modelsDir, 'added-later.gguf'));
    }
    expect((await listModels()).map((model) => model.id)).not.toContain('added-later');
  });
});

describe('a client that goes away', () => {
  let slowDir: string;
  let slow: SpawnedServer;
  let slowUrl: string;

  beforeAll(async () => {
    slowDir = await mkdtemp(path.join(os.tmpdir(), 'llmop-slow-'));
    // The bench preset is big enough that a long generation takes seconds on one thread.
    await writeDemoModelFixture(path.join(slowDir, 'slow.gguf'), demoModelPresets.bench);
    slow = spawnServer({ MODELS_DIR: slowDir, LOCAL_THREADS: '1', LOCAL_SEQUENCES: '1' });
    slowUrl = await slow.listening;
  });

  afterAll(async () => {
    slow.child.kill('SIGTERM');
    expect(await slow.exited).toBe(0);
    await rm(slowDir, { recursive: true, force: true });
  });

  it('frees its sequence, so the next request does not wait for the abandoned generation', async () => {
    const send = (body: unknown, signal?: AbortSignal) =>
      fetch(`${slowUrl}/api/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal,
      });
    const warm = await send({ model_id: 'slow', prompt: 'warm up', max_tokens: 2 });
    expect(warm.status).toBe(200);
    const fullRun = performance.now();
    await (await send({ model_id: 'slow', prompt: 'measure', max_tokens: 900, temperature: 0 })).json();
    const fullMs = performance.now() - fullRun;

    const abandon = new AbortController();
    const abandoned = send({ model_id: 'slow', prompt: 'a very long answer', max_tokens: 900, temperature: 0 }, abandon.signal);
    await new Promise((resolve) => setTimeout(resolve, fullMs / 6));
    abandon.abort();
    await expect(abandoned).rejects.toThrow();

    const startedAt = performance.now();
    const next = await send({ model_id: 'slow', prompt: 'short', max_tokens: 4 });
    expect(next.status).toBe(200);
    // With the only sequence still held, this would wait for most of the abandoned run.
    expect(performance.now() - startedAt).toBeLessThan(fullMs / 2);
  });
});
