/**
 * Budget alerts (issue 12): with BUDGET_WEBHOOK_URL set, a budget's settled spend reaching 50%, 80%
 * and 100% of its limit is POSTed once per threshold and period, retried while the receiver fails,
 * and never in the way of the generation that crossed it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rest } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const MODEL = 'priced-chat';
const PROMPT = 'one two three four five six seven eight';
const CALL_USD = 0.009; // 9 output tokens at $0.001, input free

interface Receiver {
  readonly url: string;
  /** Every POST that was answered 2xx, in arrival order. */
  readonly delivered: Array<Record<string, unknown>>;
  attempts: number;
  /** The next this many POSTs are answered 500. */
  failNext: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Omit<Receiver, 'url' | 'close'> = { delivered: [], attempts: 0, failNext: 0 };
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on('end', () => {
      receiver.attempts += 1;
      if (receiver.failNext > 0) {
        receiver.failNext -= 1;
        response.statusCode = 500;
        response.end();
        return;
      }
      receiver.delivered.push(JSON.parse(body) as Record<string, unknown>);
      response.statusCode = 204;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/hooks/budgets`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

describe('budget alerts', () => {
  let fake: FakeUpstream;
  let receiver: Receiver;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL] });
    receiver = await startReceiver();
    gateway = await startGateway({
      catalog: {
        endpoints: [{ name: 'vllm', base_url: fake.url }],
        models: [
          { id: MODEL, provider: 'vllm', api: 'chat', context_length: 4096, pricing: { input_per_million: 0, output_per_million: 1000 } },
        ],
      },
      env: { BUDGET_WEBHOOK_URL: receiver.url, BUDGET_WEBHOOK_RETRY_MS: '10' },
    });
  });
  afterAll(async () => {
    await gateway.close();
    await receiver.close();
    await fake.close();
  });

  it('announces 50%, 80% and 100% of the limit once each, with the spend that reached them, retrying a failed delivery', async () => {
    const created = await rest(gateway, 'POST', '/budgets', { scope: 'team', subject: 'nobody', limit_usd: 1, period: 'month' });
    const budget = await rest(gateway, 'POST', '/budgets', { scope: 'global', limit_usd: 10 * CALL_USD, period: 'month' });
    expect([created.status, budget.status]).toEqual([201, 201]);
    receiver.failNext = 1; // the 50% alert's first delivery fails

    for (let call = 0; call < 12; call += 1) {
      const answer = await rest(gateway, 'POST', '/generate', { prompt: PROMPT, model_id: MODEL, max_tokens: 9 });
      expect(answer.status).toBe(call < 10 ? 200 : 402);
    }

    const delivered = await poll(
      async () => receiver.delivered,
      (events) => events.length >= 3,
    );
    expect(receiver.attempts).toBe(4);
    const byThreshold = new Map(delivered.map((event) => [event.threshold, event]));
    expect([...byThreshold.keys()].sort()).toEqual([0.5, 0.8, 1]);
    expect(delivered).toHaveLength(3);
    for (const [threshold, calls] of [
      [0.5, 5],
      [0.8, 8],
      [1, 10],
    ] as const) {
      const event = byThreshold.get(threshold)!;
      expect(event).toMatchObject({
        budget_id: budget.body.id,
        scope: 'global',
        subject: null,
        model_id: null,
        period: 'month',
        period_start: budget.body.period_start,
      });
      expect(event.spent_usd as number).toBeCloseTo(calls * CALL_USD, 9);
      expect(event.limit_usd as number).toBeCloseTo(10 * CALL_USD, 9);
      expect(Number.isNaN(Date.parse(String(event.timestamp)))).toBe(false);
    }
  });
});
