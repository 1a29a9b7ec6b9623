/**
 * Budgets across processes (issue 12): two gateway processes sharing one PostgreSQL never
 * overspend a budget between them, and a gateway killed with SIGKILL in the middle of a burst
 * leaves no hold behind once it restarts: spend never exceeds the limit.
 */
import { rest } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { generationCalls } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startPostgres, type TestPostgres } from '../support/postgres-server';
import { spawnServer, type SpawnedServer } from '../support/spawn-server';
import { writeTempCatalog } from '../support/start-gateway';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MODEL = 'priced-chat';
const PROMPT = 'one two three four five six seven eight';
const MAX_TOKENS = 9;
const CALL_USD = 0.009; // 9 output tokens at $0.001, input free

const catalogFor = (fake: FakeUpstream): string =>
  writeTempCatalog({
    endpoints: [{ name: 'vllm', base_url: fake.url }],
    models: [
      { id: MODEL, provider: 'vllm', api: 'chat', context_length: 4096, pricing: { input_per_million: 0, output_per_million: 1000 } },
    ],
  });

const generate = (url: string) => rest({ url }, 'POST', '/generate', { prompt: PROMPT, model_id: MODEL, max_tokens: MAX_TOKENS });

async function launch(env: Record<string, string>): Promise<{ server: SpawnedServer; url: string }> {
  const server = spawnServer({ RATE_LIMIT_GENERATE: '100000', UPSTREAM_MAX_RETRIES: '0', ...env });
  return { server, url: await server.listening };
}

async function stop(server: SpawnedServer): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
  await server.exited;
}

describe('budgets across processes', () => {
  let fake: FakeUpstream;
  let postgres: TestPostgres;
  const running: SpawnedServer[] = [];

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL] });
    postgres = await startPostgres();
  }, 60_000);
  afterEach(async () => {
    await Promise.all(running.splice(0).map(stop));
    fake.reset();
  });
  afterAll(async () => {
    await fake.close();
    await postgres.stop();
  });

  it('lets two gateways sharing one PostgreSQL spend exactly what the budget holds: 25 requests each, 10 pass', async () => {
    const env = { DATABASE_URL: await postgres.createDatabase(), MODEL_CATALOG: catalogFor(fake) };
    const first = await launch(env);
    const second = await launch(env);
    running.push(first.server, second.server);
    const created = await rest(first, 'POST', '/budgets', { scope: 'global', limit_usd: 10 * CALL_USD, period: 'month' });
    expect(created.status).toBe(201);

    const answers = await Promise.all([
      ...Array.from({ length: 25 }, () => generate(first.url)),
      ...Array.from({ length: 25 }, () => generate(second.url)),
    ]);

    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(10);
    expect(answers.filter((answer) => answer.status === 402)).toHaveLength(40);
    expect(generationCalls(fake)).toHaveLength(10);
    const budget = (await rest(second, 'GET', `/budgets/${created.body.id}`)).body;
    expect(budget.spent_usd).toBeCloseTo(10 * CALL_USD, 9);
    expect(budget.reserved_usd).toBe(0);
  }, 60_000);

  it('leaves no hold after a SIGKILL in the middle of a burst: the next start settles it, and spend stays within the limit', async () => {
    const env = { DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-budget-crash-')), MODEL_CATALOG: catalogFor(fake) };
    const before = await launch(env);
    running.push(before.server);
    const created = await rest(before, 'POST', '/budgets', { scope: 'global', limit_usd: 5 * CALL_USD, period: 'total' });
    expect(created.status).toBe(201);
    expect((await generate(before.url)).status).toBe(200);

    // The upstream stops answering: the burst's generations hold money until the process dies.
    fake.defaultBehaviour = { kind: 'timeout' };
    const burst = Array.from({ length: 8 }, () => generate(before.url).catch(() => undefined));
    await poll(
      async () => generationCalls(fake).length,
      (calls) => calls >= 5,
    );
    const held = (await rest(before, 'GET', `/budgets/${created.body.id}`)).body;
    expect(held.reserved_usd).toBeCloseTo(4 * CALL_USD, 9);
    before.server.child.kill('SIGKILL');
    await before.server.exited;
    await Promise.all(burst);

    fake.defaultBehaviour = { kind: 'ok' };
    const after = await launch(env);
    running.push(after.server);
    const budget = (await rest(after, 'GET', `/budgets/${created.body.id}`)).body;
    expect(budget.reserved_usd).toBe(0);
    // Unknown usage is never refunded: each interrupted hold became spend, and the limit held.
    expect(budget.spent_usd).toBeCloseTo(5 * CALL_USD, 9);
    expect(budget.spent_usd).toBeLessThanOrEqual(budget.limit_usd + 1e-12);
    const cancelled = (await rest(after, 'GET', '/generations?status=cancelled')).body.generations as Array<{ cost_usd: number }>;
    expect(cancelled).toHaveLength(4);
    for (const row of cancelled) expect(row.cost_usd).toBeCloseTo(CALL_USD, 9);
    expect((await generate(after.url)).status).toBe(402);
  }, 60_000);
});
