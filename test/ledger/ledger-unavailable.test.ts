/**
 * A ledger that cannot be reached: with its PostgreSQL stopped, a generation cannot be recorded, so
 * it is not served: 503 ledger_unavailable before any upstream call (nothing is spent unmetered),
 * and /ready says the gateway is not ready.
 */
import { expectToMatchContract, rest } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { CHAT_MODEL, COMPLETION_MODEL, generationCalls, LEDGER_MODELS, ledgerCatalog } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startPostgres, type TestPostgres } from '../support/postgres-server';
import { startGateway, type RunningGateway } from '../support/start-gateway';

describe('a gateway whose PostgreSQL ledger goes away', () => {
  let fake: FakeUpstream;
  let postgres: TestPostgres;
  let gateway: RunningGateway;
  let postgresStopped = false;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    postgres = await startPostgres();
    gateway = await startGateway({ catalog: ledgerCatalog(fake), env: { DATABASE_URL: await postgres.createDatabase() } });
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
    if (!postgresStopped) await postgres?.stop();
  }, 60_000);

  it('is ready and records generations while the database answers', async () => {
    const ready = await rest(gateway, 'GET', '/ready');
    expectToMatchContract(ready, '/ready', 'get');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ ready: true, checks: { ledger_reachable: true } });

    const response = await rest(gateway, 'POST', '/generate', { prompt: 'recorded', model_id: CHAT_MODEL });
    expect(response.status).toBe(200);
    const row = await rest(gateway, 'GET', `/generations/${response.body.metadata.generation_id}`);
    expect([row.status, row.body.status]).toEqual([200, 'succeeded']);
  });

  it('answers 503 for a generation whose row cannot be committed once it ran, and still counts it in the metrics', async () => {
    // The upstream answers once the database has gone: the call was made (and billed), its row cannot be finished.
    // The first test's call is forgotten, so the database stops only once this call has reached the upstream.
    fake.reset();
    let openGate = (): void => undefined;
    fake.holdAnswersUntil = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const pending = rest(gateway, 'POST', '/generate', { prompt: 'ran, unrecorded', model_id: CHAT_MODEL });
    await poll(
      async () => generationCalls(fake).length,
      (calls) => calls === 1,
    );
    postgresStopped = true;
    try {
      await postgres.stop();
    } finally {
      openGate();
    }
    const answered = await pending;
    expectToMatchContract(answered, '/generate', 'post');
    expect([answered.status, answered.body.error]).toEqual([503, 'ledger_unavailable']);
    expect(answered.body.details).toMatch(/ran but its ledger row could not be committed/);

    const metrics = await fetch(`${gateway.url}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(new RegExp(`^llmop_unrecorded_generations_total\\{model="${CHAT_MODEL}"\\} 1$`, 'm'));
    // Both generations reached the upstream and succeeded there: the first recorded, this one not.
    expect(metrics).toMatch(new RegExp(`^llmop_generations_total\\{model="${CHAT_MODEL}",[^}]*status="succeeded"\\} 2$`, 'm'));
  }, 30_000);

  it('once the database is stopped, refuses generations with 503 ledger_unavailable without calling the upstream, and is not ready', async () => {
    fake.reset();

    const single = await rest(gateway, 'POST', '/generate', { prompt: 'unmetered?', model_id: CHAT_MODEL });
    expectToMatchContract(single, '/generate', 'post');
    expect([single.status, single.body.error]).toEqual([503, 'ledger_unavailable']);

    const batch = await rest(gateway, 'POST', '/generate/batch', { prompts: ['a', 'b'], model_id: COMPLETION_MODEL });
    expectToMatchContract(batch, '/generate/batch', 'post');
    expect([batch.status, batch.body.error]).toEqual([503, 'ledger_unavailable']);

    const graphql = await gateway.graphql('mutation { generate(prompt: "unmetered?", model_id: "tiny-chat") { text } }');
    expect(graphql.body.errors?.[0]?.extensions?.code).toBe('ledger_unavailable');

    expect(generationCalls(fake)).toEqual([]);

    const ready = await poll(
      () => rest(gateway, 'GET', '/ready'),
      (response) => response.status === 503,
      10_000,
    );
    expectToMatchContract(ready, '/ready', 'get');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ ready: false, checks: { ledger_reachable: false } });

    // Reads say the same, never a masked 500.
    for (const path of ['/generations', '/usage']) {
      const read = await rest(gateway, 'GET', path);
      expectToMatchContract(read, path, 'get');
      expect([read.status, read.body.error]).toEqual([503, 'ledger_unavailable']);
    }
  });
});
