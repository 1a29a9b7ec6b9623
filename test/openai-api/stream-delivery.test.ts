/**
 * How /v1 streams reach an `openai` SDK client (issue 15): each upstream chunk without buffering,
 * keep-alive comments that the SDK skips, and a shutdown that ends an open stream with an error event
 * in OpenAI's shape, its ledger row recorded before the process lets go of the database.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { type APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { expectedReply, type FakeUpstream, realmSafeFetch, startFakeUpstream } from '../support/fake-openai-upstream';
import { generationCalls, type LedgerGeneration } from '../support/ledger-fixtures';
import { type RunningGateway, startGateway } from '../support/start-gateway';

const KEY = 'stream-delivery-key-0123456789';
const CHAT_MODEL = 'tiny-chat';
const PROMPT = 'one chunk every tenth of a second please';

let fake: FakeUpstream;
let gateway: RunningGateway;
let client: OpenAI;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-openai-stream-'));
const catalog = (upstream: FakeUpstream) => ({
  endpoints: [{ name: 'vllm', base_url: upstream.url }],
  models: [{ id: CHAT_MODEL, provider: 'vllm', api: 'chat', context_length: 4096 }],
});

beforeAll(async () => {
  fake = await startFakeUpstream({ models: [CHAT_MODEL] });
  // A comment line whenever 30 ms pass without a write: several between two chunks 100 ms apart.
  gateway = await startGateway({ catalog: catalog(fake), env: { API_KEYS: KEY, DATA_DIR: dataDir, STREAM_HEARTBEAT_MS: '30' } });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: KEY, maxRetries: 0, fetch: realmSafeFetch });
});

afterAll(async () => {
  await gateway?.close();
  await fake?.close();
});

beforeEach(() => fake.reset());

const streamed = (maxTokens = 16) =>
  client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: maxTokens, stream: true });

it('hands each upstream chunk to the SDK within 10 ms of the upstream sending it', async () => {
  // The first stream of a process loads and compiles its code paths (tens of ms): not what is measured.
  for await (const _chunk of await streamed(2)) {
  }
  fake.reset();
  fake.chunkDelayMs = 100;
  const received: Array<{ text: string; at: number }> = [];
  for await (const chunk of await streamed()) {
    const text = chunk.choices[0]?.delta.content;
    if (text) received.push({ text, at: performance.now() });
  }
  const [call] = generationCalls(fake);
  const sentAt = call!.chunksSentAt;
  expect(received.map((piece) => piece.text).join('')).toBe(expectedReply(PROMPT).text);
  expect(received).toHaveLength(sentAt.length);
  const lags = received.map((piece, index) => piece.at - sentAt[index]!);
  for (const lag of lags) expect(lag).toBeGreaterThanOrEqual(0);
  // The first chunk leaves the upstream with its headers, so it also waits for the stream's start on both sides
  // (this process runs the client too): that is time to first token, which `npm run bench:gateway` measures.
  const following = lags.slice(1).sort((a, b) => a - b);
  expect(following[Math.floor(following.length / 2)]).toBeLessThan(10);
  // A buffered chunk would wait for the next one, 100 ms later; the margin above 10 ms is for a busy machine.
  expect(following.at(-1)).toBeLessThan(50);
});

it('sends keep-alive comments between chunks, which the SDK skips', async () => {
  fake.chunkDelayMs = 100;
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: CHAT_MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: 3, stream: true }),
  });
  const body = await response.text();
  expect(body).toContain(': keep-alive\n\n');
  expect(body.endsWith('data: [DONE]\n\n')).toBe(true);

  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of await streamed(3)) chunks.push(chunk);
  expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(expectedReply(PROMPT, 3).text);
});

it('ends an open stream with a service_unavailable error event on shutdown, its row recorded as interrupted', async () => {
  fake.chunkDelayMs = 100;
  const stream = await streamed();
  let id = '';
  let text = '';
  let closing: Promise<void> | undefined;
  let failure: unknown;
  try {
    for await (const chunk of stream) {
      id = chunk.id;
      text += chunk.choices[0]?.delta.content ?? '';
      closing ??= text === 'echo:' ? gateway.close() : undefined;
    }
  } catch (error) {
    failure = error;
  }
  await closing;
  expect(failure).toBeInstanceOf(OpenAI.APIError);
  expect(failure).toMatchObject({ type: 'server_error', code: 'service_unavailable' });
  expect((failure as APIError).message).toContain('shutting down');
  expect(text.startsWith('echo:')).toBe(true);

  // The next process on the same ledger finds the row.
  const next = await startGateway({ catalog: catalog(fake), env: { API_KEYS: KEY, DATA_DIR: dataDir } });
  try {
    const response = await fetch(`${next.url}/api/v1/generations/${id.slice('chatcmpl-'.length)}`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    const row = (await response.json()) as LedgerGeneration;
    expect(row).toMatchObject({ source: 'openai', status: 'cancelled', error: 'interrupted', text });
  } finally {
    await next.close();
  }
});
