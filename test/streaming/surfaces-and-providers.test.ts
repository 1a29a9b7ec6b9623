/**
 * Issue 15's "done when": every surface streams from every kind of provider. One built server
 * process (node-llama-cpp cannot load inside jest's sandbox) serves an OpenAI model (OPENAI_BASE_URL
 * on the fake upstream), an OpenAI-compatible endpoint's model (the same fake) and a local GGUF model;
 * each is streamed over REST's SSE route, GraphQL over SSE, GraphQL over WebSocket and `/v1` with the
 * official SDK. On every one the deltas, joined, are exactly the final text, which is the answer the
 * upstream would give, and the generation is recorded with its surface's source. Needs `npm run build`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { demoModelPresets, writeDemoModel } from '../../scripts/gguf/demo-model';
import { expectedReply, type FakeUpstream, startFakeUpstream } from '../support/fake-openai-upstream';
import { writeTempCatalog } from '../support/start-gateway';
import { spawnServer, type SpawnedServer } from '../support/spawn-server';
import { dataOf, openStream } from './sse-client';

const PROMPT = 'streams reach every client the same way';
const MAX_TOKENS = 6;

/** The three kinds of provider, by the model id that reaches each. */
const MODELS = { openai: 'gpt-4o-mini', compatible: 'compatible-chat', local: 'demo' } as const;
type ProviderKind = keyof typeof MODELS;

/** What a surface saw of one streamed generation. */
interface Streamed {
  readonly deltas: string[];
  readonly text: string;
  readonly generationId: string;
}

const SUBSCRIPTION = `subscription ($prompt: String!, $model_id: String!, $max_tokens: Int, $temperature: Float) {
  generate_stream(prompt: $prompt, model_id: $model_id, max_tokens: $max_tokens, temperature: $temperature) {
    text
    response { text metadata { generation_id } }
  }
}`;

interface StreamEvent {
  text: string;
  response: { text: string; metadata: { generation_id: string } } | null;
}

const subscriptionOf = (modelId: string) => ({
  query: SUBSCRIPTION,
  variables: { prompt: PROMPT, model_id: modelId, max_tokens: MAX_TOKENS, temperature: 0 },
});

/** A subscription's events until it completes: every one but the last a delta, the last the response. */
async function subscribed(results: AsyncIterable<{ data?: unknown; errors?: unknown }>): Promise<Streamed> {
  const events: StreamEvent[] = [];
  for await (const result of results) {
    expect(result.errors).toBeUndefined();
    events.push((result.data as { generate_stream: StreamEvent }).generate_stream);
  }
  const last = events.at(-1)?.response;
  if (!last) throw new Error(`the subscription ended without a response: ${JSON.stringify(events)}`);
  return { deltas: events.slice(0, -1).map((event) => event.text), text: last.text, generationId: last.metadata.generation_id };
}

let fake: FakeUpstream;
let server: SpawnedServer;
let url: string;
let modelsDir: string;

const surfaces: Record<string, { source: string; stream: (modelId: string) => Promise<Streamed> }> = {
  'REST (POST /api/v1/generate/stream)': {
    source: 'stream',
    stream: async (modelId) => {
      const opened = await openStream(`${url}/api/v1/generate/stream`, {
        prompt: PROMPT,
        model_id: modelId,
        max_tokens: MAX_TOKENS,
        temperature: 0,
      });
      expect(opened.status).toBe(200);
      const events = await opened.ended;
      expect(events.at(-1)?.event).toBe('done');
      const done = dataOf(events.at(-1)!);
      return { deltas: events.slice(0, -1).map((event) => dataOf(event).text), text: done.text, generationId: done.metadata.generation_id };
    },
  },
  'GraphQL over SSE (/graphql/stream)': {
    source: 'stream',
    stream: async (modelId) => {
      const client = createSseClient({ url: `${url}/graphql/stream`, retryAttempts: 0 });
      try {
        return await subscribed(client.iterate(subscriptionOf(modelId)));
      } finally {
        client.dispose();
      }
    },
  },
  'GraphQL over WebSocket (/graphql)': {
    source: 'stream',
    stream: async (modelId) => {
      const client = createWsClient({ url: `${url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
      try {
        return await subscribed(client.iterate(subscriptionOf(modelId)));
      } finally {
        await client.dispose();
      }
    },
  },
  'OpenAI-compatible /v1 with the openai SDK': {
    source: 'openai',
    stream: async (modelId) => {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused-with-auth-off', maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: modelId,
        messages: [{ role: 'user', content: PROMPT }],
        max_completion_tokens: MAX_TOKENS,
        temperature: 0,
        stream: true,
      });
      const deltas: string[] = [];
      let id = '';
      for await (const chunk of stream) {
        id = chunk.id;
        const text = chunk.choices[0]?.delta.content;
        if (text) deltas.push(text);
      }
      // The same conversation answered whole: the streamed deltas must add up to it.
      const whole = await client.chat.completions.create({
        model: modelId,
        messages: [{ role: 'user', content: PROMPT }],
        max_completion_tokens: MAX_TOKENS,
        temperature: 0,
      });
      return { deltas, text: whole.choices[0]?.message.content ?? '', generationId: id.replace(/^chatcmpl-/, '') };
    },
  },
};

beforeAll(async () => {
  fake = await startFakeUpstream({ models: ['gpt-4o-mini', 'compatible-chat'] });
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'llmop-surfaces-'));
  await writeDemoModel(path.join(modelsDir, 'demo.gguf'), demoModelPresets.tiny);
  const catalog = {
    endpoints: [{ name: 'vllm', base_url: fake.url }],
    models: [{ id: MODELS.compatible, provider: 'vllm', api: 'chat', context_length: 4096 }],
  };
  server = spawnServer({
    OPENAI_API_KEY: 'sk-test-key',
    OPENAI_BASE_URL: fake.url,
    MODEL_CATALOG: writeTempCatalog(catalog),
    MODELS_DIR: modelsDir,
    LOCAL_THREADS: '1',
  });
  url = await server.listening;
}, 60_000);

afterAll(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
  await fake?.close();
  await rm(modelsDir, { recursive: true, force: true });
});

const cases = Object.keys(surfaces).flatMap((surface) => (Object.keys(MODELS) as ProviderKind[]).map((kind) => [surface, kind] as const));

it.each(cases)('%s streams from the %s provider: the deltas add up to the final text, recorded', async (surface, kind) => {
  const { deltas, text, generationId } = await surfaces[surface]!.stream(MODELS[kind]);
  expect(deltas.length).toBeGreaterThan(1);
  expect(deltas.join('')).toBe(text);
  if (kind === 'local') expect(text.length).toBeGreaterThan(0);
  // The fake answers "echo:" and the prompt's words, one word a chunk, cut to max_tokens words.
  else expect(text).toBe(expectedReply(PROMPT, MAX_TOKENS).text);

  const row = await fetch(`${url}/api/v1/generations/${generationId}`);
  expect(row.status).toBe(200);
  const generation = (await row.json()) as { source: string; status: string; text: string; provider: string };
  expect(generation).toMatchObject({ source: surfaces[surface]!.source, status: 'succeeded', text });
  expect(generation.provider).toBe(kind === 'openai' ? 'openai' : kind === 'compatible' ? 'vllm' : 'local');
});

it('sent every OpenAI and OpenAI-compatible generation upstream as a stream with include_usage', () => {
  const generations = fake.requests.filter((request) => request.path === '/v1/chat/completions' && request.body?.stream === true);
  expect(generations.length).toBeGreaterThanOrEqual(8);
  expect(generations.every((request) => request.body.stream_options?.include_usage === true)).toBe(true);
  // The OpenAI provider names the output limit as OpenAI's current API wants it.
  const toOpenAI = generations.filter((request) => request.body.model === MODELS.openai);
  expect(toOpenAI.every((request) => request.body.max_completion_tokens === MAX_TOKENS)).toBe(true);
});
