/**
 * `evaluation_progress(evaluation_id)` as a client following a run meets it (issue 15): over
 * GraphQL-over-SSE, the run as it is, then again each time its status or counts change, the last
 * event its end; a member cannot follow another caller's run; shutdown does not pass for the run's end.
 */
import { createClient } from 'graphql-sse';
import { rest } from '../support/contract';
import { poll } from '../support/polling';
import { type FakeUpstream, startFakeUpstream } from '../support/fake-openai-upstream';
import { ADMIN_KEY, bearer, CHAT_MODEL, FILE_KEYS, LEDGER_MODELS, ledgerCatalog, writeKeysFile } from '../support/ledger-fixtures';
import { type RunningGateway, startGateway } from '../support/start-gateway';

const { alice, bob } = FILE_KEYS;
const CASES = 6;

const PROGRESS = `subscription ($id: String!) {
  evaluation_progress(evaluation_id: $id) { id status progress { total completed failed } best { model_id } }
}`;

interface ProgressEvent {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: { total: number; completed: number; failed: number };
  best: { model_id: string } | null;
}

interface Followed {
  readonly events: ProgressEvent[];
  readonly errors: Array<{ readonly message: string; readonly extensions?: Readonly<Record<string, unknown>> }>;
}

describe('evaluation_progress', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  let datasetId: string;

  /** Every event of one subscription until it completes, as graphql-sse's own client receives them. */
  const follow = async (evaluationId: string, key: string): Promise<Followed> => {
    const client = createClient({ url: `${gateway.url}/graphql/stream`, headers: bearer(key), retryAttempts: 0 });
    const events: ProgressEvent[] = [];
    const errors: Followed['errors'] = [];
    try {
      for await (const result of client.iterate({ query: PROGRESS, variables: { id: evaluationId } })) {
        if (result.errors) errors.push(...result.errors);
        const event = (result.data as { evaluation_progress?: ProgressEvent } | null | undefined)?.evaluation_progress;
        if (event) events.push(event);
      }
    } catch (failure) {
      if (Array.isArray(failure)) errors.push(...failure);
      else throw failure;
    } finally {
      client.dispose();
    }
    return { events, errors };
  };

  const startRun = async (key: string): Promise<string> => {
    const started = await rest(
      gateway,
      'POST',
      '/evaluations',
      { dataset_id: datasetId, prompts: [{ name: 'say' }], model_ids: [CHAT_MODEL], scorers: [{ type: 'exact_match' }], max_tokens: 8 },
      bearer(key),
    );
    expect(started.status).toBe(202);
    return started.body.id as string;
  };

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([alice, bob]), EVAL_CONCURRENCY: '1', EVAL_PROGRESS_INTERVAL_MS: '10' },
    });
    const prompt = await rest(
      gateway,
      'POST',
      '/prompts',
      { name: 'say', template: 'Say {{word}}', model_id: CHAT_MODEL },
      bearer(ADMIN_KEY),
    );
    expect(prompt.status).toBe(201);
    const items = Array.from({ length: CASES }, (_unused, index) => ({
      variables: { word: `w${index}` },
      expected: `echo: Say w${index}`,
    }));
    const dataset = await rest(gateway, 'POST', '/datasets', { name: 'words', items }, bearer(ADMIN_KEY));
    expect(dataset.status).toBe(201);
    datasetId = dataset.body.id as string;
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });

  beforeEach(() => fake.reset());

  it('sends the run as it is, then each change of its progress, and ends with the finished run', async () => {
    // One cell at a time, each answered after 60 ms: the run takes long enough to be watched moving.
    fake.latencyMs = 60;
    const id = await startRun(alice.key);
    const { events, errors } = await follow(id, alice.key);

    expect(errors).toEqual([]);
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events.every((event) => event.id === id && event.progress.total === CASES)).toBe(true);
    expect(['queued', 'running']).toContain(events[0]!.status);
    const completed = events.map((event) => event.progress.completed);
    expect(completed).toEqual([...completed].sort((left, right) => left - right));
    // Every event differs from the one before it: nothing is sent twice.
    for (let index = 1; index < events.length; index += 1) {
      const [before, after] = [events[index - 1]!, events[index]!];
      expect([before.status, before.progress.completed, before.progress.failed]).not.toEqual([
        after.status,
        after.progress.completed,
        after.progress.failed,
      ]);
    }
    const last = events.at(-1)!;
    expect(last).toEqual({
      id,
      status: 'succeeded',
      progress: { total: CASES, completed: CASES, failed: 0 },
      best: { model_id: CHAT_MODEL },
    });
    const stored = await rest(gateway, 'GET', `/evaluations/${id}`, undefined, bearer(alice.key));
    expect(stored.body.status).toBe('succeeded');
  });

  it('sends a finished run once and completes', async () => {
    const id = await startRun(alice.key);
    // Follow until it ends, then again: the second subscription sees only the end.
    await follow(id, alice.key);
    const { events, errors } = await follow(id, alice.key);
    expect(errors).toEqual([]);
    expect(events.map((event) => event.status)).toEqual(['succeeded']);
  });

  it("answers evaluation_not_found for another member's run and for an unknown one, before any event", async () => {
    fake.latencyMs = 20;
    const id = await startRun(alice.key);
    const foreign = await follow(id, bob.key);
    const missing = await follow('ev_missing', bob.key);
    for (const refused of [foreign, missing]) {
      expect(refused.events).toEqual([]);
      expect(refused.errors.map((error) => error.extensions?.code)).toEqual(['evaluation_not_found']);
    }
    // An admin follows anyone's run.
    const { events } = await follow(id, ADMIN_KEY);
    expect(events.at(-1)?.status).toBe('succeeded');
  });

  it('holds at most 10 open subscriptions per caller: the 11th is refused until one closes', async () => {
    // Cells that do not answer while the test runs: the run stays running and every subscription stays open.
    fake.latencyMs = 30_000;
    const id = await startRun(bob.key);
    const client = createClient({ url: `${gateway.url}/graphql/stream`, headers: bearer(bob.key), retryAttempts: 0 });
    const open: Array<AsyncIterator<{ data?: unknown; errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }>> = [];
    const subscribe = async () => {
      const events = client.iterate({ query: PROGRESS, variables: { id } })[Symbol.asyncIterator]();
      const first = await events.next();
      return { events, first: first.value as { data?: unknown; errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> } };
    };
    try {
      for (let index = 0; index < 10; index += 1) {
        const { events, first } = await subscribe();
        expect(first.errors).toBeUndefined();
        open.push(events);
      }
      const refused = await subscribe();
      expect(refused.first.errors?.map((error) => error.extensions?.code)).toEqual(['rate_limit_exceeded']);
      // Another caller is not held back by bob's subscriptions.
      const { events: admins, first: adminFirst } = await (async () => {
        const adminClient = createClient({ url: `${gateway.url}/graphql/stream`, headers: bearer(ADMIN_KEY), retryAttempts: 0 });
        const events = adminClient.iterate({ query: PROGRESS, variables: { id } })[Symbol.asyncIterator]();
        const first = (await events.next()).value as { errors?: unknown };
        return { events, first };
      })();
      expect(adminFirst.errors).toBeUndefined();
      await admins.return?.();

      await open.shift()?.return?.();
      const again = await poll(
        () => subscribe(),
        (attempt) => {
          if (attempt.first.errors === undefined) return true;
          void attempt.events.return?.();
          return false;
        },
      );
      open.push(again.events);
    } finally {
      await Promise.all(open.map((events) => events.return?.()));
      client.dispose();
      await rest(gateway, 'POST', `/evaluations/${id}/cancel`, undefined, bearer(ADMIN_KEY));
    }
  });
});

describe('evaluation_progress at shutdown', () => {
  it('ends with service_unavailable, not as if the run had ended', async () => {
    const fake = await startFakeUpstream({ models: LEDGER_MODELS });
    // Cells that do not answer before the gateway stops: the run is still running at shutdown.
    fake.latencyMs = 30_000;
    const gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { EVAL_PROGRESS_INTERVAL_MS: '10', SHUTDOWN_TIMEOUT_MS: '2000' },
    });
    try {
      await rest(gateway, 'POST', '/prompts', { name: 'say', template: 'Say {{word}}', model_id: CHAT_MODEL });
      const dataset = await rest(gateway, 'POST', '/datasets', { name: 'words', items: [{ variables: { word: 'w' } }] });
      const started = await rest(gateway, 'POST', '/evaluations', {
        dataset_id: dataset.body.id,
        prompts: [{ name: 'say' }],
        model_ids: [CHAT_MODEL],
        scorers: [{ type: 'contains', value: 'w' }],
      });
      expect(started.status).toBe(202);

      const client = createClient({ url: `${gateway.url}/graphql/stream`, retryAttempts: 0 });
      const statuses: string[] = [];
      const codes: unknown[] = [];
      let closing: Promise<void> | undefined;
      try {
        for await (const result of client.iterate({ query: PROGRESS, variables: { id: started.body.id } })) {
          for (const error of result.errors ?? []) codes.push(error.extensions?.code);
          const event = (result.data as { evaluation_progress?: ProgressEvent } | null | undefined)?.evaluation_progress;
          if (event) statuses.push(event.status);
          closing ??= gateway.close();
        }
      } finally {
        client.dispose();
      }
      await closing;
      expect(statuses.length).toBeGreaterThanOrEqual(1);
      expect(statuses.every((status) => status === 'queued' || status === 'running')).toBe(true);
      expect(codes).toEqual(['service_unavailable']);
    } finally {
      await gateway.close();
      await fake.close();
    }
  });
});
