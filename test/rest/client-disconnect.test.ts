/**
 * A client that goes away before a whole (non-streamed) answer: the request's ClientAbort reaches the
 * generation's Deadline without an AbortSignal of its own, and must still stop the upstream call and
 * leave the row `cancelled`, on REST and on GraphQL. The real gateway, a fake upstream holding its answer.
 */
import http from 'node:http';
import { rest } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { bearer, generationCalls, type LedgerGeneration } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const ADMIN_KEY = 'disconnect-admin-key-0123456789';
const asAdmin = bearer(ADMIN_KEY);
const CHAT_MODEL = 'tiny-chat';

/** Sends a POST and destroys it once `abandonWhen` resolves; resolves when the socket has closed. */
function abandonedPost(url: string, body: unknown, abandonWhen: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const request = http.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    });
    request.on('error', () => undefined);
    request.on('close', () => resolve());
    request.end(JSON.stringify(body));
    void abandonWhen.then(() => request.destroy());
  });
}

describe('a client that disconnects before the whole answer', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  let release: () => void = () => undefined;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [CHAT_MODEL] });
    gateway = await startGateway({
      catalog: {
        endpoints: [{ name: 'vllm', base_url: fake.url }],
        models: [{ id: CHAT_MODEL, provider: 'vllm', api: 'chat', context_length: 4096, tokenizer: 'cl100k_base' }],
      },
      env: { API_KEYS: ADMIN_KEY },
    });
  });
  beforeEach(() => {
    fake.reset();
    fake.holdAnswersUntil = new Promise((resolve) => {
      release = () => resolve(undefined);
    });
  });
  afterEach(() => release());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  const cases: Array<[string, string, unknown]> = [
    ['REST generate', '/api/v1/generate', { prompt: 'an answer nobody waits for', model_id: CHAT_MODEL }],
    [
      'GraphQL generate',
      '/graphql',
      {
        query: 'mutation G($p: String!, $m: String!) { generate(prompt: $p, model_id: $m) { text } }',
        variables: { p: 'an answer nobody waits for', m: CHAT_MODEL },
      },
    ],
  ];

  const cancelledRows = async (): Promise<LedgerGeneration[]> =>
    (await rest(gateway, 'GET', '/generations?status=cancelled', undefined, asAdmin)).body.generations as LedgerGeneration[];

  it.each(cases)('%s: the upstream call is stopped and the row is cancelled', async (_surface, route, body) => {
    const before = (await cancelledRows()).length;
    const upstreamCalled = poll(
      async () => generationCalls(fake).length,
      (count) => count === 1,
    );
    await abandonedPost(`${gateway.url}${route}`, body, upstreamCalled);

    const [upstreamCall] = generationCalls(fake);
    const closedEarlyAt = await poll(
      async () => upstreamCall!.closedEarlyAt,
      (at) => at !== undefined,
    );
    expect(closedEarlyAt).toBeDefined();
    const rows = await poll(cancelledRows, (cancelled) => cancelled.length > before);
    expect(rows).toHaveLength(before + 1);
    // Newest first: this request's row.
    expect(rows[0]).toMatchObject({ status: 'cancelled', error: 'cancelled', model_id: CHAT_MODEL, text: null });
  });
});
