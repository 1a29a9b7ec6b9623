/**
 * Budgets that cannot be overspent (issue 12), as callers meet them: through the real gateway, in
 * front of a fake OpenAI-compatible upstream whose answers cost a fixed, known amount. The same
 * suite runs on the embedded SQLite ledger and on a real PostgreSQL.
 */
import { expectToMatchContract, rest } from '../support/contract';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { type FreshLedger, generationCalls, type LedgerSetup, postgresLedgerSetup, sqliteLedgerSetup } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const MODEL = 'priced-chat';
const FREE_MODEL = 'free-chat';
// Eight words: the fake answers "echo:" and the words, so max_tokens 9 is exactly what it generates.
const PROMPT = 'one two three four five six seven eight';
const MAX_TOKENS = 9;
// Input is free and each output token costs $0.001: a call costs exactly $0.009, its worst case too.
const CALL_USD = 0.009;

const catalogFor = (fake: FakeUpstream) => ({
  endpoints: [{ name: 'vllm', base_url: fake.url }],
  models: [
    { id: MODEL, provider: 'vllm', api: 'chat', context_length: 4096, pricing: { input_per_million: 0, output_per_million: 1000 } },
    { id: FREE_MODEL, provider: 'vllm', api: 'chat', context_length: 4096 },
  ],
});

interface Budget {
  id: string;
  limit_usd: number;
  spent_usd: number;
  reserved_usd: number;
  remaining_usd: number;
}

const closeTo = (actual: number, expected: number): void => expect(actual).toBeCloseTo(expected, 9);

describe.each<[string, () => LedgerSetup]>([
  ['SQLite', sqliteLedgerSetup],
  ['PostgreSQL', postgresLedgerSetup],
])('budgets on %s', (_name, makeSetup) => {
  const setup = makeSetup();
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  let ledger: FreshLedger;

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: [MODEL, FREE_MODEL] });
  }, 60_000);
  afterAll(async () => {
    await fake.close();
    await setup.tearDown();
  });
  beforeEach(async () => {
    fake.reset();
    ledger = await setup.freshLedger();
    gateway = await startGateway({ catalog: catalogFor(fake), env: { ...ledger.env } });
  });
  afterEach(() => gateway.close());

  const createBudget = async (input: Record<string, unknown>): Promise<Budget> => {
    const response = await rest(gateway, 'POST', '/budgets', input);
    expect(response.status).toBe(201);
    return response.body as Budget;
  };
  const readBudget = async (id: string): Promise<Budget> => {
    const response = await rest(gateway, 'GET', `/budgets/${id}`);
    expect(response.status).toBe(200);
    return response.body as Budget;
  };
  const generate = (body: Record<string, unknown> = {}) =>
    rest(gateway, 'POST', '/generate', { prompt: PROMPT, model_id: MODEL, max_tokens: MAX_TOKENS, ...body });
  /** What the ledger says this model cost (the settled spend a global budget on it must equal). */
  const ledgerSpend = async (): Promise<number> => {
    const usage = await rest(gateway, 'GET', '/usage?group_by=model');
    return (usage.body.rows as Array<{ group: string; cost_usd: number }>).find((row) => row.group === MODEL)?.cost_usd ?? 0;
  };

  it('lets exactly as many of 50 concurrent generates through as the budget pays for, and refuses the rest with 402 before any upstream call', async () => {
    expect(expectedReply(PROMPT, MAX_TOKENS).completionTokens).toBe(MAX_TOKENS);
    const budget = await createBudget({ scope: 'global', limit_usd: 10 * CALL_USD, period: 'month' });

    const answers = await Promise.all(Array.from({ length: 50 }, () => generate()));

    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(10);
    expect(statuses.filter((status) => status === 402)).toHaveLength(40);
    const refusal = answers.find((answer) => answer.status === 402)!;
    expectToMatchContract(refusal, '/generate', 'post');
    expect(refusal.body.error).toBe('budget_exceeded');
    expect(refusal.body.details).toContain(budget.id);
    expect(generationCalls(fake)).toHaveLength(10);

    const after = await readBudget(budget.id);
    closeTo(after.spent_usd, 10 * CALL_USD);
    closeTo(after.reserved_usd, 0);
    closeTo(after.remaining_usd, 0);
    closeTo(await ledgerSpend(), after.spent_usd);
  }, 60_000);

  it('holds a batch all or nothing: the sum of its prompts, never part of it', async () => {
    const budget = await createBudget({ scope: 'global', limit_usd: 3 * CALL_USD, period: 'day' });
    const batch = (size: number) =>
      rest(gateway, 'POST', '/generate/batch', { prompts: Array(size).fill(PROMPT), model_id: MODEL, max_tokens: MAX_TOKENS });

    const tooBig = await batch(4);
    expect([tooBig.status, tooBig.body.error]).toEqual([402, 'budget_exceeded']);
    expect(generationCalls(fake)).toHaveLength(0);
    closeTo((await readBudget(budget.id)).reserved_usd, 0);

    const fits = await batch(3);
    expect(fits.status).toBe(200);
    expect(fits.body.metrics.successful_generations).toBe(3);
    closeTo((await readBudget(budget.id)).spent_usd, 3 * CALL_USD);
  });

  it('lowers the max_tokens of a single generate to what the money left buys, and says so', async () => {
    await createBudget({ scope: 'global', limit_usd: 0.004, period: 'total' });

    const answer = await generate();
    expect(answer.status).toBe(200);
    expect(answer.body.parameters.max_tokens).toBe(4);
    expect(generationCalls(fake)[0]!.body.max_tokens).toBe(4);
    expect(answer.body.text).toBe(expectedReply(PROMPT, 4).text);

    // Nothing left for even one output token: refused.
    const refused = await generate();
    expect(refused.status).toBe(402);
  });

  it('applies every budget that covers the call (key, team, global, model) and none that does not', async () => {
    const otherModel = await createBudget({ scope: 'global', model_id: 'some-other-model', limit_usd: 0, period: 'month' });
    const otherKey = await createBudget({ scope: 'key', subject: 'someone-else', limit_usd: 0, period: 'month' });
    expect((await generate()).status).toBe(200);
    const mine = await createBudget({ scope: 'key', subject: 'anonymous', limit_usd: 0, period: 'week' });
    const refused = await generate();
    expect([refused.status, refused.body.details.includes(mine.id)]).toEqual([402, true]);
    closeTo((await readBudget(otherModel.id)).spent_usd, 0);
    closeTo((await readBudget(otherKey.id)).spent_usd, 0);
  });

  it('never holds anything for a model without a price', async () => {
    await createBudget({ scope: 'global', limit_usd: 0, period: 'month' });
    const answer = await generate({ model_id: FREE_MODEL });
    expect(answer.status).toBe(200);
  });

  it('takes a raised limit at the next request, and a deleted budget stops applying at once', async () => {
    const budget = await createBudget({ scope: 'global', limit_usd: 0, period: 'month' });
    expect((await generate()).status).toBe(402);
    const raised = await rest(gateway, 'PATCH', `/budgets/${budget.id}`, { limit_usd: CALL_USD });
    expect(raised.status).toBe(200);
    expect((await generate()).status).toBe(200);
    expect((await generate()).status).toBe(402);
    expect((await rest(gateway, 'DELETE', `/budgets/${budget.id}`)).status).toBe(204);
    expect((await generate()).status).toBe(200);
  });

  it('after 200 random successful, failing and abandoned calls holds nothing, and its spend is the sum of the ledger rows', async () => {
    const budget = await createBudget({ scope: 'global', limit_usd: 1000, period: 'month' });
    fake.failPromptsContaining = 'fail';
    // A deterministic mix: every 3rd call fails upstream, every 7th is abandoned by its client.
    const calls = Array.from({ length: 200 }, async (_, index) => {
      const prompt = index % 3 === 0 ? `please fail ${index}` : `${PROMPT} ${index}`;
      if (index % 7 !== 0) return generate({ prompt, max_tokens: 1 + (index % 12) });
      const controller = new AbortController();
      const pending = fetch(`${gateway.url}/api/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt, model_id: MODEL, max_tokens: 5 }),
        signal: controller.signal,
      }).catch(() => undefined);
      setImmediate(() => controller.abort());
      return pending;
    });
    await Promise.all(calls);
    // Abandoned calls finish on their own time: wait until nothing is held.
    const state = await poll(
      () => readBudget(budget.id),
      (read) => read.reserved_usd === 0,
      10_000,
    );
    closeTo(state.reserved_usd, 0);
    expect(state.spent_usd).toBeGreaterThan(0);
    closeTo(state.spent_usd, await ledgerSpend());
  }, 60_000);
});
