/**
 * Streams that end early (issue 15): a client that disconnects mid-stream stops the upstream call
 * within 100 ms and leaves a `cancelled` row with the text and tokens generated so far, charged to
 * its budgets; a gateway that shuts down sends its open streams an `error` event and records them
 * before it has closed. The real gateway, a fake upstream that streams a chunk every 100 ms or more.
 */
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/storage/database';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import { expectToMatchSchemaAt, rest } from '../support/contract';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { bearer, generationCalls, type LedgerGeneration } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { dataOf, joinedDeltas, openStream } from './sse-client';

const ADMIN_KEY = 'cancel-admin-key-0123456789';
/** API_KEYS names its first key `key-1`. */
const ADMIN_NAME = 'key-1';
const asAdmin = bearer(ADMIN_KEY);
const CHAT_MODEL = 'tiny-chat';
const PRICE = { input_per_million: 3, output_per_million: 15 };

const catalogFor = (fake: FakeUpstream) => ({
  endpoints: [{ name: 'vllm', base_url: fake.url }],
  models: [{ id: CHAT_MODEL, provider: 'vllm', api: 'chat', context_length: 4096, tokenizer: 'cl100k_base', pricing: PRICE }],
});

const PROMPT = 'please write a long answer that the client will abandon half way through';

describe('a client that disconnects mid-stream', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [CHAT_MODEL] });
    gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: ADMIN_KEY } });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('aborts the upstream call within 100 ms, and its row is cancelled with the text and tokens so far, charged to its budget', async () => {
    const budget = await rest(gateway, 'POST', '/budgets', { scope: 'key', subject: ADMIN_NAME, limit_usd: 10, period: 'total' }, asAdmin);
    expect(budget.status).toBe(201);
    const spentBefore = budget.body.spent_usd as number;
    fake.chunkDelayMs = 100;

    const opened = await openStream(
      `${gateway.url}/api/v1/generate/stream`,
      { prompt: PROMPT, model_id: CHAT_MODEL, max_tokens: 64 },
      asAdmin,
    );
    expect(opened.status).toBe(200);
    const received = await opened.eventCount(2);
    const abortedAt = opened.abort();
    const textSoFar = joinedDeltas(received);
    expect(textSoFar).toBe('echo: please');

    const [upstreamCall] = generationCalls(fake);
    const closedEarlyAt = await poll(
      async () => upstreamCall!.closedEarlyAt,
      (at) => at !== undefined,
    );
    expect(closedEarlyAt! - abortedAt).toBeLessThan(100);
    // No chunk went out after the abort: the upstream stopped at what the client saw.
    expect(upstreamCall!.chunksSentAt).toHaveLength(2);

    const rows = await poll(
      async () => (await rest(gateway, 'GET', '/generations?status=cancelled', undefined, asAdmin)).body.generations as LedgerGeneration[],
      (cancelled) => cancelled.length > 0,
    );
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ source: 'stream', status: 'cancelled', error: 'cancelled', caller: ADMIN_NAME, text: textSoFar });
    expect(row.metrics.output_tokens).toBe(countCl100k(textSoFar));
    expect(row.metrics.input_tokens).toBeGreaterThan(0);
    const cost = (row.metrics.input_tokens * PRICE.input_per_million + row.metrics.output_tokens * PRICE.output_per_million) / 1e6;
    expect(row.cost_usd).toBeCloseTo(cost, 12);

    const after = await rest(gateway, 'GET', `/budgets/${budget.body.id}`, undefined, asAdmin);
    expect(after.status).toBe(200);
    expect(after.body.spent_usd).toBeCloseTo(spentBefore + row.cost_usd, 12);
  });

  it('keeps serving: the next stream on the same model runs to its end', async () => {
    fake.chunkDelayMs = 100;
    const abandoned = await openStream(`${gateway.url}/api/v1/generate/stream`, { prompt: PROMPT, model_id: CHAT_MODEL }, asAdmin);
    await abandoned.eventCount(1);
    abandoned.abort();
    fake.chunkDelayMs = 0;
    const next = await openStream(
      `${gateway.url}/api/v1/generate/stream`,
      { prompt: 'and now a short one', model_id: CHAT_MODEL },
      asAdmin,
    );
    const events = await next.ended;
    expect(events.at(-1)?.event).toBe('done');
    expect(joinedDeltas(events)).toBe(expectedReply('and now a short one').text);
  });
});

describe('a gateway that shuts down with a stream open', () => {
  it('sends the stream an error event (503 service_unavailable) and records its row as cancelled, interrupted, before close resolves', async () => {
    const fake = await startFakeUpstream({ models: [CHAT_MODEL] });
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-stream-shutdown-'));
    const gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: ADMIN_KEY, DATA_DIR: dataDir } });
    let closed = false;
    try {
      fake.chunkDelayMs = 200;
      const opened = await openStream(`${gateway.url}/api/v1/generate/stream`, { prompt: PROMPT, model_id: CHAT_MODEL }, asAdmin);
      expect(opened.status).toBe(200);
      await opened.eventCount(2);

      await gateway.app.close();
      closed = true;
      const events = await opened.ended;
      const last = events.at(-1)!;
      expect(last.event).toBe('error');
      const error = dataOf(last);
      expectToMatchSchemaAt(error, '#/components/schemas/ErrorResponse', 'the error event');
      expect(error.error).toBe('service_unavailable');
      const textSoFar = joinedDeltas(events);
      expect(textSoFar.length).toBeGreaterThan(0);

      // Read straight from the database the gateway closed: nothing has swept it since.
      const database = await openDatabase({ sqliteFile: path.join(dataDir, 'llmop.db') });
      try {
        const ledger = new LedgerRepository(database, { recordContent: true });
        const page = await ledger.list({}, { limit: 10 });
        expect(page.generations).toHaveLength(1);
        const row = page.generations[0]!;
        expect(row).toMatchObject({ source: 'stream', status: 'cancelled', error: 'interrupted', text: textSoFar });
        expect(row.outputTokens).toBe(countCl100k(textSoFar));
        // A row closed by the next start-up's sweep would have no text and no latency.
        expect(row.latencyMs).toBeGreaterThan(0);
      } finally {
        await database.close();
      }
    } finally {
      if (!closed) await gateway.close();
      await fake.close();
    }
  });

  it('interrupts at once a stream whose upstream answers after shutdown began, and records it', async () => {
    const fake = await startFakeUpstream({ models: [CHAT_MODEL] });
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-stream-shutdown-'));
    const gateway = await startGateway({ catalog: catalogFor(fake), env: { API_KEYS: ADMIN_KEY, DATA_DIR: dataDir } });
    let closed = false;
    try {
      fake.latencyMs = 300;
      fake.chunkDelayMs = 200;
      const opening = openStream(`${gateway.url}/api/v1/generate/stream`, { prompt: PROMPT, model_id: CHAT_MODEL }, asAdmin);
      await poll(
        async () => generationCalls(fake).length,
        (calls) => calls > 0,
      );
      const closing = gateway.app.close();
      const opened = await opening;
      const events = await opened.ended;
      expect(events.at(-1)?.event).toBe('error');
      expect(dataOf(events.at(-1)!).error).toBe('service_unavailable');
      await closing;
      closed = true;
      // Not relayed to its end while the gateway drained: 200 ms a chunk would have taken seconds.
      expect(generationCalls(fake)[0]!.closedEarlyAt).toEqual(expect.any(Number));

      const database = await openDatabase({ sqliteFile: path.join(dataDir, 'llmop.db') });
      try {
        const page = await new LedgerRepository(database, { recordContent: true }).list({}, { limit: 10 });
        expect(page.generations).toHaveLength(1);
        expect(page.generations[0]).toMatchObject({ source: 'stream', status: 'cancelled', error: 'interrupted' });
      } finally {
        await database.close();
      }
    } finally {
      if (!closed) await gateway.close();
      await fake.close();
    }
  });
});
