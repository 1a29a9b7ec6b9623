/**
 * The /v1 API in front of local GGUF models (issue 15): a conversation reaches the model through
 * its own chat template (a generated ChatML model) or, for a model without one, node-llama-cpp's
 * general chat wrapper; streamed deltas join into the text the same request answers whole. Local
 * inference runs in a real server process: node-llama-cpp cannot load inside jest's sandbox.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { demoModelPresets, writeDemoModel } from '../../scripts/gguf/demo-model';
import { realmSafeFetch } from '../support/fake-openai-upstream';
import { type SpawnedServer, spawnServer } from '../support/spawn-server';

let modelsDir: string;
let server: SpawnedServer;
let url: string;
let client: OpenAI;

beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'llmop-openai-local-'));
  await writeDemoModel(path.join(modelsDir, 'demo.gguf'), demoModelPresets.tiny);
  await writeDemoModel(path.join(modelsDir, 'demo-chat.gguf'), { ...demoModelPresets.tiny, chatTemplate: 'chatml', name: 'demo-chat' });
  await writeFile(
    path.join(modelsDir, 'demo-chat.json'),
    JSON.stringify({ name: 'Support bot', capabilities: ['text-generation', 'chat'], fine_tuning: { created_at: '2026-10-01' } }),
  );
  server = spawnServer({ MODELS_DIR: modelsDir, LOCAL_THREADS: '1', LOCAL_SEQUENCES: '2' });
  url = await server.listening;
  // Authentication is off on this server: any key is let in.
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, fetch: realmSafeFetch });
}, 60_000);

afterAll(async () => {
  server?.child.kill('SIGTERM');
  if (server) expect(await server.exited).toBe(0);
  await rm(modelsDir, { recursive: true, force: true });
});

const conversation: ChatCompletionMessageParam[] = [
  { role: 'system', content: 'You answer questions about the weather.' },
  { role: 'user', content: 'What is the weather today?' },
  { role: 'assistant', content: 'Sunny.' },
  { role: 'user', content: 'And tomorrow?' },
];

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

async function ledgerText(completionId: string): Promise<string | null> {
  const response = await fetch(`${url}/api/v1/generations/${completionId.slice('chatcmpl-'.length)}`);
  const row = (await response.json()) as { source: string; text: string | null };
  expect(row.source).toBe('openai');
  return row.text;
}

describe.each([
  ['its chat template', 'demo-chat'],
  ['the general chat wrapper (no template of its own)', 'demo'],
])('a local model through %s', (_how, model) => {
  it('streams deltas that join into the text the same request answers whole', async () => {
    const request = { model, messages: conversation, max_tokens: 24, temperature: 0 };
    const whole = await client.chat.completions.create(request);
    const chunks = await collect(
      await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } }),
    );

    const text = whole.choices[0]!.message.content!;
    expect(text.length).toBeGreaterThan(0);
    const joined = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(joined).toBe(text);
    // Tokens as they are sampled: more than one content chunk.
    expect(chunks.filter((chunk) => chunk.choices[0]?.delta.content).length).toBeGreaterThan(1);
    const finish = chunks.find((chunk) => chunk.choices[0]?.finish_reason);
    expect(finish!.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
    expect(await ledgerText(chunks[0]!.id)).toBe(text);
    expect(await ledgerText(whole.id)).toBe(text);
  });

  it('honours max_completion_tokens exactly', async () => {
    const completion = await client.chat.completions.create({ model, messages: conversation, max_completion_tokens: 5, temperature: 0 });
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage!.completion_tokens).toBe(5);
  });
});

describe('GET /v1/models with local models', () => {
  it('lists them owned by local, a fine-tune dated by its model card', async () => {
    const models = (await client.models.list()).data;
    const local = models.filter((entry) => entry.owned_by === 'local').map((entry) => entry.id);
    expect(local.sort()).toEqual(['demo', 'demo-chat']);
    expect((await client.models.retrieve('demo-chat')).created).toBe(Date.parse('2026-10-01') / 1000);
  });
});
