/**
 * Evaluation runs are jobs that survive the process running them (issue 14), with real server
 * processes (dist/src/start.js: run `npm run build` first), real SQLite files, a real PostgreSQL, a
 * real Redis and fake OpenAI-compatible upstreams:
 * - SQLite: a server killed (SIGKILL) or stopped (SIGTERM) mid-run; the next server on the same
 *   DATA_DIR resumes the run: every cell recorded once, finished cells never asked again, the lost
 *   attempts `cancelled` in the ledger.
 * - PostgreSQL + Redis (BullMQ): two replicas' workers share a run; one is killed; the other
 *   finishes its cells.
 * - PostgreSQL without Redis: the replica that claimed a run is killed; the other takes the run over
 *   once the claim's lease (EVAL_LEASE_MS) runs out.
 *
 * Each replica has its own fake upstream, named as its own endpoint in its catalog: the fake's
 * requests and the ledger rows' `provider` say which replica did what.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Client } from 'pg';
import { expectToMatchContract, rest } from '../support/contract';
import { type FakeUpstream, type RecordedRequest, startFakeUpstream } from '../support/fake-openai-upstream';
import { ADMIN_KEY, bearer, generationCalls, type LedgerGeneration, walkGenerations } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startPostgres, type TestPostgres } from '../support/postgres-server';
import { startRedis } from '../support/redis-server';
import { type SpawnedServer, spawnServer } from '../support/spawn-server';
import { writeTempCatalog } from '../support/start-gateway';

const asAdmin = bearer(ADMIN_KEY);
const MODEL = 'crash-chat';
/** Cells in flight per process: at most this many attempts are lost when one dies. */
const CONCURRENCY = 2;
/** Short, so the PostgreSQL ledger's sweep closes a dead replica's rows 15 s + this after they started. */
const UPSTREAM_TIMEOUT_MS = 2000;
const LEASE_MS = 2000;

interface Evaluation {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: { total: number; completed: number; failed: number };
  error: string | null;
}

interface Result {
  item_index: number;
  generation_id: string | null;
  text: string | null;
  passed: boolean;
  error: string | null;
}

interface Server {
  readonly server: SpawnedServer;
  readonly url: string;
}

/** A catalog whose one model is served by `fake`, through an endpoint named `endpoint` (the ledger's `provider`). */
const catalogFor = (fake: FakeUpstream, endpoint: string): string =>
  writeTempCatalog({
    endpoints: [{ name: endpoint, base_url: fake.url }],
    models: [
      { id: MODEL, provider: endpoint, api: 'chat', context_length: 4096, pricing: { input_per_million: 1, output_per_million: 2 } },
    ],
  });

async function launch(env: Record<string, string>): Promise<Server> {
  const server = spawnServer({
    API_KEYS: ADMIN_KEY,
    MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')),
    UPSTREAM_MAX_RETRIES: '0',
    UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
    RATE_LIMIT_GENERATE: '100000',
    RATE_LIMIT_GENERATE_BATCH: '100000',
    RATE_LIMIT_DEFAULT: '100000',
    EVAL_CONCURRENCY: String(CONCURRENCY),
    LOG_LEVEL: 'info',
    ...env,
  });
  return { server, url: await server.listening };
}

const alive = (server: SpawnedServer): boolean => server.child.exitCode === null && server.child.signalCode === null;

/** `error` with the last lines each server logged appended to its message (and stack, which jest prints). */
function withLogTails(error: unknown, servers: Record<string, SpawnedServer | undefined>): unknown {
  if (!(error instanceof Error)) return error;
  const tails = Object.entries(servers)
    .filter((entry): entry is [string, SpawnedServer] => entry[1] !== undefined)
    .map(([name, server]) => {
      // The test's own polling of the run (an access-log line every ~100 ms) would fill the tail and hide the rest.
      const lines = server
        .output()
        .trimEnd()
        .split('\n')
        .filter((line) => !line.includes('"operation":"evaluation","status":200'));
      return `--- ${name}'s last log lines (the run's status reads left out) ---\n${lines.slice(-40).join('\n')}`;
    })
    .join('\n');
  error.message += `\n${tails}`;
  if (error.stack) error.stack += `\n${tails}`;
  return error;
}

/** The case a prompt, an upstream request or a ledger row is about (`Answer case-7` is case 7). */
function caseIn(text: unknown): number {
  const match = /\bcase-(\d+)\b/.exec(typeof text === 'string' ? text : JSON.stringify(text));
  if (!match) throw new Error(`no case in ${JSON.stringify(text)}`);
  return Number(match[1]);
}
const casesAsked = (requests: readonly RecordedRequest[]): number[] => requests.map((request) => caseIn(request.body));
const range = (count: number): number[] => Array.from({ length: count }, (_unused, index) => index);
const sorted = (values: Iterable<number>): number[] => [...values].sort((left, right) => left - right);
function countsOf(values: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

/**
 * A prompt (`<verb> {{word}}`, named after its verb), a dataset of `cases` cases (`case-<n>`) and a
 * run of them on MODEL, started through `server`; the run's id.
 */
async function startRun(server: Server, cases: number, verb = 'Answer'): Promise<string> {
  const name = verb.toLowerCase();
  const prompt = await rest(server, 'POST', '/prompts', { name, template: `${verb} {{word}}`, model_id: MODEL }, asAdmin);
  expect(prompt.status).toBe(201);
  const items = range(cases).map((index) => ({ variables: { word: `case-${index}` }, expected: `echo: ${verb} case-${index}` }));
  const dataset = await rest(server, 'POST', '/datasets', { name: `${name} cases`, items }, asAdmin);
  expect(dataset.status).toBe(201);
  const started = await rest(
    server,
    'POST',
    '/evaluations',
    {
      dataset_id: dataset.body.id,
      prompts: [{ name, version: 1 }],
      model_ids: [MODEL],
      scorers: [{ type: 'exact_match' }],
      max_tokens: 10,
    },
    asAdmin,
  );
  expectToMatchContract(started, '/evaluations', 'post');
  expect(started.status).toBe(202);
  return (started.body as Evaluation).id;
}

async function getRun(server: Server, id: string): Promise<Evaluation> {
  const response = await rest(server, 'GET', `/evaluations/${id}`, undefined, asAdmin);
  expectToMatchContract(response, '/evaluations/{evaluation_id}', 'get');
  expect(response.status).toBe(200);
  return response.body as Evaluation;
}

/** Generous: a busy 2-core CI machine has taken over 30 s for a run that takes 5 s alone. */
const waitForEnd = (server: Server, id: string, timeoutMs = 60_000): Promise<Evaluation> =>
  poll(
    () => getRun(server, id),
    (run) => run.status !== 'queued' && run.status !== 'running',
    timeoutMs,
  );

async function allResults(server: Server, id: string): Promise<Result[]> {
  const results: Result[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `?limit=100&cursor=${cursor}` : '?limit=100';
    const response = await rest(server, 'GET', `/evaluations/${id}/results${query}`, undefined, asAdmin);
    expectToMatchContract(response, '/evaluations/{evaluation_id}/results', 'get');
    expect(response.status).toBe(200);
    results.push(...(response.body.results as Result[]));
    cursor = response.body.next_cursor as string | null;
  } while (cursor);
  return results;
}

/** The run's rows in the ledger, as an admin lists them (in-progress rows are not listed). */
async function ledgerRows(server: Server, id: string): Promise<LedgerGeneration[]> {
  return (await walkGenerations(server, { limit: 200 }, asAdmin)).filter((row) => row.evaluation_id === id);
}

/**
 * What a resumed run must end with: succeeded, every case's cell recorded exactly once (item indexes
 * 0..cases-1, each passing, each with its own generation), and answers the results.
 */
async function expectEveryCellOnce(server: Server, id: string, cases: number, verb = 'Answer'): Promise<Result[]> {
  const run = await waitForEnd(server, id);
  expect([run.status, run.error]).toEqual(['succeeded', null]);
  expect(run.progress).toEqual({ total: cases, completed: cases, failed: 0 });
  const results = await allResults(server, id);
  expect(results.map((result) => result.item_index)).toEqual(range(cases));
  expect(results.filter((result) => !result.passed || result.error !== null)).toEqual([]);
  expect(results.map((result) => result.text)).toEqual(range(cases).map((index) => `echo: ${verb} case-${index}`));
  expect(new Set(results.map((result) => result.generation_id)).size).toBe(cases);
  return results;
}

interface DiskRow {
  id: string;
  status: string;
  prompt: string;
}

/** The SQLite ledger as the killed process left it on disk, read before anything else opens it. */
function readDisk(
  dataDir: string,
  id: string,
): { status: string; completed: number; cells: Array<{ item_index: number; generation_id: string }>; rows: DiskRow[] } {
  const database = new BetterSqlite3(path.join(dataDir, 'llmop.db'), { readonly: true, fileMustExist: true });
  try {
    const run = database.prepare('select status, completed from evaluations where id = ?').get(id) as { status: string; completed: number };
    const cells = database
      .prepare('select item_index, generation_id from evaluation_cells where evaluation_id = ? order by item_index')
      .all(id) as Array<{
      item_index: number;
      generation_id: string;
    }>;
    const rows = database.prepare('select id, status, prompt from generations where evaluation_id = ?').all(id) as DiskRow[];
    return { ...run, cells, rows };
  } finally {
    database.close();
  }
}

async function queryPostgres<T>(databaseUrl: string, text: string, values: unknown[]): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('evaluation runs across a crash of the server on SQLite (one DATA_DIR)', () => {
  let fake: FakeUpstream;
  let catalogFile: string;
  const servers: SpawnedServer[] = [];

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL] });
    catalogFile = catalogFor(fake, 'vllm');
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      if (alive(server)) server.child.kill('SIGKILL');
      await server.exited;
    }
  });
  afterAll(() => fake.close());

  /**
   * Starts a 20-case run with 150 ms per generation, stops the server with `signal` once 5 cells
   * are recorded, reads what it left on disk, and resumes on a new server on the same DATA_DIR.
   */
  async function interruptAndResume(signal: 'SIGKILL' | 'SIGTERM') {
    const cases = 20;
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-eval-crash-'));
    const env = { DATA_DIR: dataDir, MODEL_CATALOG: catalogFile };
    fake.latencyMs = 150;
    const first = await launch(env);
    servers.push(first.server);
    const id = await startRun(first, cases);
    await poll(
      () => getRun(first, id),
      (run) => run.progress.completed >= 5,
      20_000,
    );
    first.server.child.kill(signal);
    expect(await first.server.exited).toBe(signal === 'SIGKILL' ? 'SIGKILL' : 0);
    const askedBefore = casesAsked(generationCalls(fake));

    // Stopped mid-run: some cells recorded, the run still running on disk.
    const disk = readDisk(dataDir, id);
    const finishedBefore = disk.cells.map((cell) => cell.item_index);
    expect(disk.status).toBe('running');
    expect(disk.completed).toBe(finishedBefore.length);
    expect(finishedBefore.length).toBeGreaterThanOrEqual(5);
    expect(finishedBefore.length).toBeLessThan(cases);
    // Each recorded cell's generation is a succeeded row; at most CONCURRENCY attempts were lost.
    const diskRow = new Map(disk.rows.map((row) => [row.id, row]));
    for (const cell of disk.cells) expect(diskRow.get(cell.generation_id)?.status).toBe('succeeded');
    const recordedIds = new Set(disk.cells.map((cell) => cell.generation_id));
    const lost = disk.rows.filter((row) => !recordedIds.has(row.id));
    expect(lost.length).toBeLessThanOrEqual(CONCURRENCY);
    // The upstream saw each recorded case once, and at most the lost attempts besides.
    for (const item of finishedBefore) expect(askedBefore.filter((asked) => asked === item)).toEqual([item]);
    expect(askedBefore.length - finishedBefore.length).toBeLessThanOrEqual(lost.length);

    const second = await launch(env);
    servers.push(second.server);
    const results = await expectEveryCellOnce(second, id, cases);
    expect(results.filter((result) => finishedBefore.includes(result.item_index)).map((result) => result.generation_id)).toEqual(
      disk.cells.map((cell) => cell.generation_id),
    );
    // The new server asked exactly the cases not recorded before: finished cells are never redone.
    const askedAfter = casesAsked(generationCalls(fake).slice(askedBefore.length));
    expect(sorted(askedAfter)).toEqual(range(cases).filter((item) => !finishedBefore.includes(item)));
    const askedTwice = [...countsOf(casesAsked(generationCalls(fake)))].filter(([, count]) => count > 1);
    expect(askedTwice.every(([, count]) => count === 2)).toBe(true);
    expect(askedTwice.length).toBeLessThanOrEqual(CONCURRENCY);

    // The ledger: each result's generation succeeded; the lost attempts are closed, none left open.
    const rows = await ledgerRows(second, id);
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const result of results) expect(byId.get(result.generation_id!)).toMatchObject({ status: 'succeeded', source: 'evaluation' });
    expect(rows.every((row) => row.prompt_ref?.name === 'answer' && row.model_id === MODEL)).toBe(true);
    return { disk, lost, rows, results };
  }

  it('resumes a run after a SIGKILL on the next start: every cell recorded once, the in-flight attempts cancelled and redone', async () => {
    const { disk, lost, rows, results } = await interruptAndResume('SIGKILL');
    const inProgress = disk.rows.filter((row) => row.status === 'in_progress');
    // The start-up sweep closed exactly the rows the killed process left open, as `cancelled`.
    expect(sorted(rows.filter((row) => row.status === 'cancelled').map((row) => caseIn(row.prompt)))).toEqual(
      sorted(inProgress.map((row) => caseIn(row.prompt))),
    );
    expect(
      rows
        .filter((row) => row.status === 'cancelled')
        .map((row) => row.id)
        .sort(),
    ).toEqual(inProgress.map((row) => row.id).sort());
    // A generation that succeeded but whose cell the kill beat to the disk stays succeeded (it was answered and
    // charged) and its cell is redone: such rows are the only succeeded ones beside the results' own.
    const resultIds = new Set(results.map((result) => result.generation_id));
    const succeededUnrecorded = lost.filter((row) => row.status === 'succeeded').map((row) => row.id);
    expect(rows.filter((row) => row.status === 'succeeded' && !resultIds.has(row.id)).map((row) => row.id)).toEqual(succeededUnrecorded);
    expect(rows.filter((row) => row.status === 'succeeded')).toHaveLength(20 + succeededUnrecorded.length);
    expect(rows).toHaveLength(20 + lost.length);
    expect(rows.filter((row) => row.status !== 'succeeded' && row.status !== 'cancelled')).toEqual([]);
  }, 60_000);

  it('resumes a run after a graceful stop (SIGTERM): the cells in flight are aborted as cancelled, then redone by the next start', async () => {
    const { disk, lost, rows } = await interruptAndResume('SIGTERM');
    // The stopping server closed its own attempts: nothing was left open, nothing answered went unrecorded.
    expect(disk.rows.filter((row) => row.status === 'in_progress')).toEqual([]);
    expect(lost.every((row) => row.status === 'cancelled')).toBe(true);
    expect(rows.filter((row) => row.status === 'succeeded')).toHaveLength(20);
    expect(sorted(rows.filter((row) => row.status === 'cancelled').map((row) => caseIn(row.prompt)))).toEqual(
      sorted(lost.map((row) => caseIn(row.prompt))),
    );
    expect(rows).toHaveLength(20 + lost.length);
  }, 60_000);
});

/**
 * These tests run at once (it.concurrent), each with its own database, upstreams, Redis and
 * processes: most of their time is the wait for the ledger's sweep, which they share this way.
 */
describe('evaluation runs across the loss of one of two replicas on one PostgreSQL', () => {
  let postgres: TestPostgres;

  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await postgres?.stop();
  }, 30_000);

  interface Replica {
    readonly server: SpawnedServer;
    readonly url: string;
    /** Its own upstream, 300 ms per generation. */
    readonly fake: FakeUpstream;
    /** Its endpoint's name: the `provider` of the ledger rows it writes. */
    readonly provider: 'replica-a' | 'replica-b';
  }

  interface Replicas {
    readonly databaseUrl: string;
    readonly a: Replica;
    readonly b: Replica;
  }

  /**
   * Replicas A and B on one new database, each with its own upstream, and with `withRedis` a Redis of
   * their own (one BullMQ queue per test); everything stopped after `use`.
   */
  async function withTwoReplicas(withRedis: boolean, use: (replicas: Replicas) => Promise<void>): Promise<void> {
    const [fakeA, fakeB, redis] = await Promise.all([
      startFakeUpstream({ models: [MODEL] }),
      startFakeUpstream({ models: [MODEL] }),
      withRedis ? startRedis() : undefined,
    ]);
    const servers: SpawnedServer[] = [];
    try {
      fakeA.latencyMs = 300;
      fakeB.latencyMs = 300;
      const databaseUrl = await postgres.createDatabase();
      const env = { DATABASE_URL: databaseUrl, EVAL_LEASE_MS: String(LEASE_MS), ...(redis ? { REDIS_URL: redis.url } : {}) };
      const launched = await Promise.allSettled([
        launch({ ...env, MODEL_CATALOG: catalogFor(fakeA, 'replica-a') }),
        launch({ ...env, MODEL_CATALOG: catalogFor(fakeB, 'replica-b') }),
      ]);
      for (const outcome of launched) if (outcome.status === 'fulfilled') servers.push(outcome.value.server);
      const [a, b] = launched.map((outcome) => {
        if (outcome.status === 'rejected') throw outcome.reason;
        return outcome.value;
      });
      await use({
        databaseUrl,
        a: { ...a!, fake: fakeA, provider: 'replica-a' },
        b: { ...b!, fake: fakeB, provider: 'replica-b' },
      });
    } catch (error) {
      // What the replicas logged is the only account of why a run did not end: it goes with the failure.
      throw withLogTails(error, { 'replica-a': servers[0], 'replica-b': servers[1] });
    } finally {
      for (const server of servers) {
        if (alive(server)) server.child.kill('SIGKILL');
        await server.exited;
      }
      await Promise.all([fakeA.close(), fakeB.close(), redis?.stop()]);
    }
  }

  /** A replica's rows of the run (once it is dead, only the sweep changes them: it closes the open ones). */
  const rowsOf = (databaseUrl: string, id: string, replica: Replica) =>
    queryPostgres<{ id: string; status: string; prompt: string }>(
      databaseUrl,
      'select id, status, prompt from generations where evaluation_id = $1 and provider = $2',
      [id, replica.provider],
    );

  /** Every generation the two upstreams were asked for, by case. */
  const askedOfBoth = ({ a, b }: Replicas) => countsOf(casesAsked([...generationCalls(a.fake), ...generationCalls(b.fake)]));

  /**
   * After the run ended on the survivor: the dead replica's rows open at its death are swept
   * `cancelled` (15 s + UPSTREAM_TIMEOUT_MS after they started, within the 10 s sweep interval); every
   * cell's generation succeeded; the only other rows are the dead one's lost attempts; the upstreams
   * were asked each case once, a lost one twice.
   */
  async function expectLostAttemptsClosed(
    replicas: Replicas,
    { dead, survivor }: { readonly dead: Replica; readonly survivor: Replica },
    id: string,
    cases: number,
    results: readonly Result[],
    atDeath: ReadonlyArray<{ id: string; status: string; prompt: string }>,
  ) {
    const resultIds = new Set(results.map((result) => result.generation_id));
    const lost = atDeath.filter((row) => !resultIds.has(row.id));
    const open = atDeath.filter((row) => row.status === 'in_progress');
    expect(lost.filter((row) => row.status !== 'in_progress' && row.status !== 'succeeded')).toEqual([]);
    expect(lost.length).toBeLessThanOrEqual(CONCURRENCY);

    const rows = await poll(
      () => ledgerRows(survivor, id),
      (listed) => listed.filter((row) => row.status === 'cancelled').length >= open.length,
      40_000,
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const result of results) expect(byId.get(result.generation_id!)?.status).toBe('succeeded');
    expect(sorted(rows.filter((row) => row.status === 'cancelled').map((row) => caseIn(row.prompt)))).toEqual(
      sorted(open.map((row) => caseIn(row.prompt))),
    );
    expect(rows.filter((row) => row.status === 'cancelled').every((row) => row.provider === dead.provider)).toBe(true);
    const succeededUnrecorded = lost.filter((row) => row.status === 'succeeded').map((row) => row.id);
    expect(rows.filter((row) => row.status === 'succeeded')).toHaveLength(cases + succeededUnrecorded.length);
    expect(rows).toHaveLength(cases + lost.length);

    const asked = askedOfBoth(replicas);
    expect(sorted(asked.keys())).toEqual(range(cases));
    const twice = [...asked].filter(([, count]) => count > 1);
    expect(twice.every(([, count]) => count === 2)).toBe(true);
    expect(twice.length).toBeLessThanOrEqual(lost.length);
  }

  /** Waits until both replicas' workers have taken cases of the run, and 8 cells are recorded. */
  async function expectBothWorking({ a, b }: Replicas, id: string): Promise<void> {
    const run = await poll(
      () => getRun(b, id),
      (read) => read.progress.completed >= 8 && generationCalls(a.fake).length >= 2 && generationCalls(b.fake).length >= 2,
      20_000,
    );
    expect(run.status).toBe('running');
    expect(generationCalls(a.fake).length).toBeGreaterThanOrEqual(2);
    expect(generationCalls(b.fake).length).toBeGreaterThanOrEqual(2);
  }

  it.concurrent(
    'with Redis (BullMQ), both replicas work one run; when A is killed, B finishes its cells: each cell once, A’s lost attempts cancelled',
    () =>
      withTwoReplicas(true, async (replicas) => {
        const { databaseUrl, a, b } = replicas;
        const cases = 30;
        const id = await startRun(a, cases);
        // Both replicas' workers take cases of the run that A accepted.
        await expectBothWorking(replicas, id);
        a.server.child.kill('SIGKILL');
        expect(await a.server.exited).toBe('SIGKILL');
        const askedOfA = generationCalls(a.fake).length;
        const atKill = await rowsOf(databaseUrl, id, a);
        expect((await getRun(b, id)).progress.completed).toBeLessThan(cases);

        const results = await expectEveryCellOnce(b, id, cases);
        // A did nothing after its death; B did the rest, A's unrecorded cases included.
        expect(generationCalls(a.fake)).toHaveLength(askedOfA);
        const ofA = new Set(atKill.map((row) => row.id));
        const recordedByA = results.filter((result) => ofA.has(result.generation_id!));
        expect(recordedByA.length).toBeGreaterThanOrEqual(1);
        expect(recordedByA.length).toBeLessThan(cases);
        await expectLostAttemptsClosed(replicas, { dead: a, survivor: b }, id, cases, results, atKill);
      }),
    140_000,
  );

  it.concurrent(
    'without Redis, the replica that claimed the run works it alone; killed, the other takes it over once its lease ran out and finishes it',
    () =>
      withTwoReplicas(false, async (replicas) => {
        const { databaseUrl, a, b } = replicas;
        const cases = 20;
        const id = await startRun(a, cases);
        await poll(
          () => getRun(b, id),
          (run) => run.progress.completed >= 4,
          20_000,
        );
        // The run is one replica's (A's, unless B's sweep claimed it before A did): the other asked its upstream nothing.
        const [owner, other] = generationCalls(a.fake).length > 0 ? [a, b] : [b, a];
        expect(generationCalls(other.fake)).toHaveLength(0);
        owner.server.child.kill('SIGKILL');
        expect(await owner.server.exited).toBe('SIGKILL');
        const [lease] = await queryPostgres<{ lease_owner: string | null; lease_until: string | null; status: string }>(
          databaseUrl,
          'select lease_owner, lease_until, status from evaluations where id = $1',
          [id],
        );
        expect(lease).toMatchObject({ status: 'running', lease_owner: expect.any(String), lease_until: expect.anything() });
        const atKill = await rowsOf(databaseUrl, id, owner);
        expect(generationCalls(other.fake)).toHaveLength(0);

        const results = await expectEveryCellOnce(other, id, cases);
        // The other started only once the owner's lease had run out, and asked exactly what the owner had not recorded.
        expect(generationCalls(other.fake)[0]!.receivedAt).toBeGreaterThanOrEqual(Number(lease!.lease_until));
        const ofOwner = new Set(atKill.map((row) => row.id));
        const recordedByOwner = results.filter((result) => ofOwner.has(result.generation_id!)).map((result) => result.item_index);
        expect(recordedByOwner.length).toBeGreaterThanOrEqual(4);
        expect(sorted(casesAsked(generationCalls(other.fake)))).toEqual(range(cases).filter((item) => !recordedByOwner.includes(item)));
        await expectLostAttemptsClosed(replicas, { dead: owner, survivor: other }, id, cases, results, atKill);
      }),
    140_000,
  );

  it.concurrent(
    'with Redis (BullMQ), a replica stopped gracefully (SIGTERM) mid-run hands its cases back: the other finishes the run, each cell once',
    () =>
      withTwoReplicas(true, async (replicas) => {
        const { a, b } = replicas;
        const cases = 30;
        const id = await startRun(a, cases);
        await expectBothWorking(replicas, id);
        a.server.child.kill('SIGTERM');
        expect(await a.server.exited).toBe(0);
        expect((await getRun(b, id)).progress.completed).toBeLessThan(cases);

        const results = await expectEveryCellOnce(b, id, cases);
        // A closed the attempts it aborted itself (`cancelled`, no sweep needed); B redid those cases.
        const rows = await ledgerRows(b, id);
        const byId = new Map(rows.map((row) => [row.id, row]));
        for (const result of results) expect(byId.get(result.generation_id!)?.status).toBe('succeeded');
        const cancelled = rows.filter((row) => row.status === 'cancelled');
        expect(cancelled.length).toBeLessThanOrEqual(CONCURRENCY);
        expect(cancelled.every((row) => row.provider === a.provider)).toBe(true);
        expect(rows.filter((row) => row.status === 'succeeded')).toHaveLength(cases);
        expect(rows).toHaveLength(cases + cancelled.length);
        const asked = askedOfBoth(replicas);
        expect(sorted(asked.keys())).toEqual(range(cases));
        const twice = [...asked].filter(([, count]) => count > 1);
        expect(twice.every(([, count]) => count === 2)).toBe(true);
        expect(twice.length).toBeLessThanOrEqual(cancelled.length);
      }),
    120_000,
  );
  it.concurrent(
    'without Redis, a run waiting behind another on its replica keeps its lease: the other replica leaves it alone while its owner lives',
    () =>
      withTwoReplicas(false, async (replicas) => {
        const { a, b } = replicas;
        // A works the first run (~3 s at 2 cells at a time) while the second waits longer than a lease.
        const first = await startRun(a, 20, 'Answer');
        const second = await startRun(a, 10, 'Repeat');
        await expectEveryCellOnce(a, first, 20, 'Answer');
        await expectEveryCellOnce(a, second, 10, 'Repeat');
        expect(generationCalls(b.fake)).toHaveLength(0);
        const asked = generationCalls(a.fake).map((request) => JSON.stringify(request.body.messages));
        expect(asked).toHaveLength(30);
        expect(new Set(asked).size).toBe(30);
      }),
    120_000,
  );
});
