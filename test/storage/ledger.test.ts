import { sql } from 'kysely';
import { openDatabase, type DatabaseSettings, type LedgerDatabase } from '../../src/storage/database';
import { newGenerationId } from '../../src/storage/generation-id';
import { ledgerMigrations } from '../../src/storage/migrations';
import { INTERRUPTED_ERROR, LedgerRepository } from '../../src/storage/ledger-repository';
import type {
  Generation,
  GenerationOutcome,
  GenerationStart,
  LedgerFilter,
  UsageGroupBy,
  UsageTotals,
} from '../../src/storage/ledger-types';
import { DatabaseSchemaTooNewError, GenerationNotStartedError, InvalidCursorError } from '../../src/storage/storage-errors';
import { type LedgerStore, postgresStore, sqliteStore } from './ledger-stores';

/*
 * One suite, two stores: everything the ledger promises holds on the embedded SQLite file and on
 * a real PostgreSQL alike.
 */

const BASE_TIME = Date.UTC(2025, 2, 10, 12, 0, 0);
const at = (offsetMs: number): Date => new Date(BASE_TIME + offsetMs);

interface RowSpec {
  readonly createdAt?: Date;
  readonly caller?: string;
  readonly team?: string | null;
  readonly modelId?: string;
  readonly source?: GenerationStart['source'];
  readonly status?: GenerationOutcome['status'];
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly costUsd?: number;
}

function startOf(spec: RowSpec = {}): GenerationStart {
  const createdAt = spec.createdAt ?? at(0);
  return {
    id: newGenerationId(createdAt),
    requestId: `req-${Math.random().toString(36).slice(2)}`,
    caller: spec.caller ?? 'alice',
    team: spec.team === undefined ? 'research' : spec.team,
    source: spec.source ?? 'generate',
    modelId: spec.modelId ?? 'tiny-chat',
    provider: 'vllm',
    upstreamModel: 'tiny-chat-v1',
    prompt: 'Say hello',
    promptRef: null,
    evaluationId: null,
    parameters: { maxTokens: 100, temperature: 0.7, topP: 1 },
    createdAt,
  };
}

function outcomeOf(spec: RowSpec = {}): GenerationOutcome {
  const status = spec.status ?? 'succeeded';
  return {
    status,
    error: status === 'succeeded' ? null : 'generation_error',
    finishReason: status === 'succeeded' ? 'stop' : null,
    text: status === 'succeeded' ? 'Hello!' : null,
    inputTokens: spec.inputTokens ?? 3,
    outputTokens: spec.outputTokens ?? (status === 'succeeded' ? 2 : 0),
    costUsd: spec.costUsd ?? 0.0000042,
    latencyMs: 12,
    attempts: [{ provider: 'vllm', upstreamModel: 'tiny-chat-v1', error: null, latencyMs: 12 }],
  };
}

/** Starts and finishes one generation; resolves once both are committed. */
async function record(ledger: LedgerRepository, spec: RowSpec = {}): Promise<string> {
  const start = startOf(spec);
  await ledger.start(start);
  await ledger.finish(start.id, outcomeOf(spec));
  return start.id;
}

/** Every page of a listing, in order. */
async function listAll(ledger: LedgerRepository, filter: LedgerFilter, limit = 7): Promise<Generation[]> {
  const all: Generation[] = [];
  let cursor: string | null = null;
  do {
    const page = await ledger.list(filter, { limit, cursor });
    all.push(...page.generations);
    cursor = page.nextCursor;
  } while (cursor);
  return all;
}

/** Usage totals computed by hand from listed generations. */
function totalsOfListed(generations: readonly Generation[]): Omit<UsageTotals, 'costUsd'> {
  const count = (pick: (generation: Generation) => number) => generations.reduce((sum, generation) => sum + pick(generation), 0);
  return {
    requests: generations.length,
    succeeded: generations.filter((generation) => generation.status === 'succeeded').length,
    failed: generations.filter((generation) => generation.status === 'failed').length,
    inputTokens: count((generation) => generation.inputTokens),
    outputTokens: count((generation) => generation.outputTokens),
    totalTokens: count((generation) => generation.inputTokens + generation.outputTokens),
    costUnits: generations.reduce((sum, generation) => sum + BigInt(generation.costUnits), 0n),
  };
}

const withoutUsd = ({ costUsd: _costUsd, ...rest }: UsageTotals): Omit<UsageTotals, 'costUsd'> => rest;

describe.each([
  ['SQLite', sqliteStore],
  ['PostgreSQL', postgresStore],
] as const)('the ledger on %s', (_name, makeStore) => {
  const store: LedgerStore = makeStore();
  let settings: DatabaseSettings;
  let database: LedgerDatabase;
  let ledger: LedgerRepository;
  let now: Date;
  const openLedger = (options: { recordContent?: boolean } = {}) =>
    new LedgerRepository(database, { recordContent: options.recordContent ?? true, now: () => now });

  beforeAll(async () => {
    await store.setUp();
    settings = await store.freshDatabase();
    database = await openDatabase(settings);
  });
  beforeEach(async () => {
    await database.db.deleteFrom('generations').execute();
    now = at(60_000);
    ledger = openLedger();
  });
  afterEach(() => ledger.close());
  afterAll(async () => {
    await database?.close();
    await store.tearDown();
  });

  it('commits a started generation before start resolves, and lists it only once it is finished', async () => {
    const other = await openDatabase(settings); // another process's connection: it sees committed rows only
    try {
      const start = startOf();
      await ledger.start(start);
      const seen = await other.db.selectFrom('generations').select(['id', 'status']).execute();
      expect(seen).toEqual([{ id: start.id, status: 'in_progress' }]);
      expect((await ledger.list({}, { limit: 10 })).generations).toEqual([]);
      expect(await ledger.get(start.id)).toBeUndefined();

      await ledger.finish(start.id, outcomeOf({ inputTokens: 5, outputTokens: 7, costUsd: 0.0123456789 }));
      const finished = await other.db
        .selectFrom('generations')
        .select(['status', 'cost_units'])
        .where('id', '=', start.id)
        .executeTakeFirstOrThrow();
      expect(finished).toEqual({ status: 'succeeded', cost_units: 123_456_789 });
      const [listed] = (await ledger.list({}, { limit: 10 })).generations;
      expect(listed).toEqual({
        id: start.id,
        requestId: start.requestId,
        caller: 'alice',
        team: 'research',
        source: 'generate',
        modelId: 'tiny-chat',
        provider: 'vllm',
        upstreamModel: 'tiny-chat-v1',
        status: 'succeeded',
        error: null,
        finishReason: 'stop',
        prompt: 'Say hello',
        text: 'Hello!',
        promptRef: null,
        evaluationId: null,
        parameters: { maxTokens: 100, temperature: 0.7, topP: 1 },
        inputTokens: 5,
        outputTokens: 7,
        costUsd: 0.0123456789,
        costUnits: 123_456_789,
        latencyMs: 12,
        attempts: [{ provider: 'vllm', upstreamModel: 'tiny-chat-v1', error: null, latencyMs: 12 }],
        createdAt: start.createdAt,
        finishedAt: now,
      });
      expect(await ledger.get(start.id)).toEqual(listed);
    } finally {
      await other.close();
    }
  });

  it('records a failed generation with its error, its counted input tokens and what was billed', async () => {
    const id = await record(ledger, { status: 'failed', inputTokens: 9, costUsd: 0 });
    expect(await ledger.get(id)).toMatchObject({
      status: 'failed',
      error: 'generation_error',
      text: null,
      inputTokens: 9,
      outputTokens: 0,
      costUsd: 0,
    });
  });

  it('keeps the prompt reference, the evaluation and the endpoint a fallback answered from', async () => {
    const start = { ...startOf({ source: 'evaluation' }), promptRef: { name: 'greeting', version: 3 }, evaluationId: 'eval_1' };
    await ledger.start(start);
    await ledger.finish(start.id, { ...outcomeOf(), provider: 'backup', upstreamModel: 'tiny-chat-v2' });
    expect(await ledger.get(start.id)).toMatchObject({
      source: 'evaluation',
      promptRef: { name: 'greeting', version: 3 },
      evaluationId: 'eval_1',
      provider: 'backup',
      upstreamModel: 'tiny-chat-v2',
    });
  });

  it('stores neither prompt nor text when content recording is off', async () => {
    const withoutContent = openLedger({ recordContent: false });
    const id = await record(withoutContent, {});
    await withoutContent.close();
    expect(await ledger.get(id)).toMatchObject({ prompt: null, text: null, outputTokens: 2 });
    const stored = await database.db.selectFrom('generations').select(['prompt', 'text']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(stored).toEqual({ prompt: null, text: null });
  });

  it('refuses to finish a generation it did not start, and invalid numbers before they reach the database', async () => {
    await expect(ledger.finish('gen_unknown', outcomeOf())).rejects.toBeInstanceOf(GenerationNotStartedError);
    const start = startOf();
    await ledger.start(start);
    await expect(ledger.finish(start.id, { ...outcomeOf(), inputTokens: -1 })).rejects.toThrow(/inputTokens/);
    await expect(ledger.finish(start.id, { ...outcomeOf(), costUsd: Number.NaN })).rejects.toThrow(/cost/);
    await expect(ledger.start({ ...startOf(), caller: '' })).rejects.toThrow(/caller/);
    await ledger.finish(start.id, outcomeOf()); // the refused attempts left the generation open
    expect((await ledger.get(start.id))?.status).toBe('succeeded');
  });

  it('commits many concurrent generations, each promise resolving after its own row is committed', async () => {
    const starts = Array.from({ length: 300 }, (_, index) => startOf({ createdAt: at(index), caller: `caller-${index % 5}` }));
    await Promise.all(
      starts.map(async (start) => {
        await ledger.start(start);
        await ledger.finish(start.id, outcomeOf());
        const row = await database.db.selectFrom('generations').select('status').where('id', '=', start.id).executeTakeFirst();
        expect(row?.status).toBe('succeeded');
      }),
    );
    expect((await ledger.usage({}, 'caller')).totals.requests).toBe(300);
  });

  it('closes generations left in progress by a crash as cancelled, and counts them in requests only', async () => {
    const crashed = openLedger();
    const interrupted = [startOf({ createdAt: at(1) }), startOf({ createdAt: at(2) })];
    for (const start of interrupted) await crashed.start(start);
    const tooRecent = startOf({ createdAt: at(50_000) });
    await crashed.start(tooRecent);
    const finished = await record(crashed, { createdAt: at(3) });
    // The process dies here: `crashed` never finishes its rows. The next start-up closes them.
    now = at(120_000);
    const restarted = openLedger();
    expect(await restarted.closeInterrupted(at(10_000))).toBe(2);
    const listed = await listAll(restarted, {});
    expect(listed.map((generation) => [generation.id, generation.status, generation.error])).toEqual([
      [finished, 'succeeded', null],
      [interrupted[1]!.id, 'cancelled', INTERRUPTED_ERROR],
      [interrupted[0]!.id, 'cancelled', INTERRUPTED_ERROR],
    ]);
    expect(listed[1]?.finishedAt).toEqual(now);
    expect(await restarted.get(tooRecent.id)).toBeUndefined();
    expect((await restarted.usage({}, 'model')).totals).toMatchObject({ requests: 3, succeeded: 1, failed: 0 });
    expect(await restarted.closeInterrupted()).toBe(1);
    await restarted.close();
  });

  it('lists newest first, and narrows by caller, model, status, source and team', async () => {
    const ids = {
      aliceChat: await record(ledger, { createdAt: at(1), caller: 'alice', modelId: 'tiny-chat' }),
      bobChat: await record(ledger, { createdAt: at(2), caller: 'bob', team: null, modelId: 'tiny-chat', status: 'failed' }),
      aliceBig: await record(ledger, { createdAt: at(3), caller: 'alice', modelId: 'big-model', source: 'batch' }),
      bobBig: await record(ledger, { createdAt: at(4), caller: 'bob', team: null, modelId: 'big-model', status: 'cancelled' }),
    };
    const listed = async (filter: LedgerFilter) =>
      (await ledger.list(filter, { limit: 50 })).generations.map((generation) => generation.id);
    expect(await listed({})).toEqual([ids.bobBig, ids.aliceBig, ids.bobChat, ids.aliceChat]);
    expect(await listed({ caller: 'alice' })).toEqual([ids.aliceBig, ids.aliceChat]);
    expect(await listed({ modelId: 'tiny-chat' })).toEqual([ids.bobChat, ids.aliceChat]);
    expect(await listed({ status: 'failed' })).toEqual([ids.bobChat]);
    expect(await listed({ status: 'cancelled' })).toEqual([ids.bobBig]);
    expect(await listed({ source: 'batch' })).toEqual([ids.aliceBig]);
    expect(await listed({ team: 'research' })).toEqual([ids.aliceBig, ids.aliceChat]);
    expect(await listed({ caller: 'bob', modelId: 'big-model' })).toEqual([ids.bobBig]);
    expect(await listed({ caller: 'carol' })).toEqual([]);
  });

  it('takes since as inclusive and until as exclusive, in lists and usage alike', async () => {
    const before = await record(ledger, { createdAt: at(999) });
    const atSince = await record(ledger, { createdAt: at(1000) });
    const inside = await record(ledger, { createdAt: at(1500) });
    const atUntil = await record(ledger, { createdAt: at(2000) });
    const window = { since: at(1000), until: at(2000) };
    const ids = (await ledger.list(window, { limit: 50 })).generations.map((generation) => generation.id);
    expect(ids).toEqual([inside, atSince]);
    expect(ids).not.toContain(before);
    expect(ids).not.toContain(atUntil);
    const report = await ledger.usage(window, 'model');
    expect(report).toMatchObject({ since: window.since, until: window.until, totals: { requests: 2 } });
  });

  it('pages without repeating or skipping a row while new generations are recorded between pages', async () => {
    // Three generations in each of ten milliseconds: rows tied on created_at are ordered by id.
    const existing: { id: string; createdAtMs: number }[] = [];
    for (let index = 0; index < 30; index++) {
      const createdAt = at(Math.floor(index / 3));
      existing.push({ id: await record(ledger, { createdAt }), createdAtMs: createdAt.getTime() });
    }
    const newestFirst = existing
      .sort((left, right) => right.createdAtMs - left.createdAtMs || (left.id < right.id ? 1 : left.id > right.id ? -1 : 0))
      .map((row) => row.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let page = 0;
    do {
      const result = await ledger.list({}, { limit: 4, cursor });
      seen.push(...result.generations.map((generation) => generation.id));
      cursor = result.nextCursor;
      // Meanwhile other requests finish: a newer generation, and one in the newest millisecond already paged through.
      await record(ledger, { createdAt: at(1000 + page) });
      await record(ledger, { createdAt: at(9) });
      page += 1;
    } while (cursor);
    expect(seen).toEqual(newestFirst);
    expect(page).toBe(8);
  });

  it('rejects a cursor it did not issue', async () => {
    await record(ledger, { createdAt: at(1) });
    await record(ledger, { createdAt: at(2) });
    const { nextCursor } = await ledger.list({}, { limit: 1 });
    expect(nextCursor).not.toBeNull();
    const tampered = `${nextCursor!.slice(0, -2)}!!`;
    const forged = Buffer.from('yesterday.gen_x').toString('base64url');
    const notPadded = `${nextCursor}=`;
    for (const cursor of ['garbage', tampered, forged, notPadded, Buffer.from('1.').toString('base64url')]) {
      await expect(ledger.list({}, { limit: 1, cursor })).rejects.toBeInstanceOf(InvalidCursorError);
    }
  });

  it('reports usage whose totals equal the sum of its rows and agree with the listed generations for the same filters', async () => {
    const callers = ['alice', 'bob', 'carol'];
    const models = ['tiny-chat', 'big-model', 'other-model'];
    const statuses = ['succeeded', 'succeeded', 'failed', 'cancelled'] as const;
    for (let index = 0; index < 120; index++) {
      await record(ledger, {
        createdAt: at(index * 3_600_000), // one an hour: five UTC days
        caller: callers[index % 3],
        team: index % 3 === 1 ? null : index % 2 === 0 ? 'research' : 'ops',
        modelId: models[(index * 7) % 3],
        status: statuses[index % 4],
        inputTokens: index,
        outputTokens: statuses[index % 4] === 'succeeded' ? index * 2 : 0,
        costUsd: (index * 1234567) / 1e10,
      });
    }
    const filters: LedgerFilter[] = [{}, { caller: 'bob' }, { modelId: 'big-model', since: at(20 * 3_600_000), until: at(90 * 3_600_000) }];
    for (const filter of filters) {
      const listed = await listAll(ledger, filter, 50);
      for (const groupBy of ['model', 'caller', 'team', 'day'] as const satisfies readonly UsageGroupBy[]) {
        const report = await ledger.usage(filter, groupBy);
        expect(withoutUsd(report.totals)).toEqual(totalsOfListed(listed));
        const summedRows = report.rows.reduce(
          (sum, row) => ({
            requests: sum.requests + row.requests,
            succeeded: sum.succeeded + row.succeeded,
            failed: sum.failed + row.failed,
            inputTokens: sum.inputTokens + row.inputTokens,
            outputTokens: sum.outputTokens + row.outputTokens,
            totalTokens: sum.totalTokens + row.totalTokens,
            costUnits: sum.costUnits + row.costUnits,
          }),
          { requests: 0, succeeded: 0, failed: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, costUnits: 0n },
        );
        expect(summedRows).toEqual(withoutUsd(report.totals));
        for (const row of report.rows) {
          const inGroup = listed.filter((generation) => groupOf(generation, groupBy) === row.group);
          expect(withoutUsd(row)).toEqual({ group: row.group, ...totalsOfListed(inGroup) });
        }
        expect(report.rows.map((row) => row.group)).toEqual([...new Set(listed.map((generation) => groupOf(generation, groupBy)))].sort());
      }
    }
  });

  it('groups by UTC day across midnight, and names the group of team-less callers ""', async () => {
    await record(ledger, { createdAt: new Date('2025-03-10T23:59:59.999Z'), team: null });
    await record(ledger, { createdAt: new Date('2025-03-11T00:00:00.000Z'), team: 'ops' });
    await record(ledger, { createdAt: new Date('2025-03-11T23:59:59.999Z'), team: null });
    const byDay = await ledger.usage({}, 'day');
    expect(byDay.rows.map((row) => [row.group, row.requests])).toEqual([
      ['2025-03-10', 1],
      ['2025-03-11', 2],
    ]);
    const byTeam = await ledger.usage({}, 'team');
    expect(byTeam.rows.map((row) => [row.group, row.requests])).toEqual([
      ['', 2],
      ['ops', 1],
    ]);
  });

  it('sums money exactly: a thousand generations of 0.0000001 USD cost 0.0001 USD', async () => {
    const starts = Array.from({ length: 1000 }, (_, index) => startOf({ createdAt: at(index) }));
    await Promise.all(starts.map((start) => ledger.start(start)));
    await Promise.all(starts.map((start) => ledger.finish(start.id, outcomeOf({ costUsd: 0.0000001 }))));
    const report = await ledger.usage({}, 'model');
    expect(report.totals.costUnits).toBe(1_000n * 1_000n);
    expect(report.totals.costUsd).toBe(0.0001);
    // Where adding numbers drifts (0.1 + 0.2 !== 0.3), the ledger does not.
    await database.db.deleteFrom('generations').execute();
    await record(ledger, { costUsd: 0.1 });
    await record(ledger, { costUsd: 0.2 });
    expect((await ledger.usage({}, 'model')).totals.costUsd).toBe(0.3);
  });

  it('answers ping while open, and false once the database is closed', async () => {
    const second = await openDatabase(settings);
    expect(await second.ping()).toBe(true);
    await second.close();
    expect(await second.ping()).toBe(false);
  });

  it('refuses, with an upgrade message, a database that a newer LLMOP has migrated', async () => {
    const fresh = await store.freshDatabase();
    const first = await openDatabase(fresh);
    await sql`insert into llmop_migration (name, timestamp) values ('0002_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(first.db);
    await first.close();
    const reopened = openDatabase(fresh);
    await expect(reopened).rejects.toBeInstanceOf(DatabaseSchemaTooNewError);
    await expect(reopened).rejects.toThrow(/"0002_from_the_future".*Upgrade LLMOP/);
  });

  it('opens an existing database without migrating it again', async () => {
    const fresh = await store.freshDatabase();
    const first = await openDatabase(fresh);
    const firstLedger = new LedgerRepository(first, { recordContent: true });
    const id = await record(firstLedger);
    await first.close();
    const second = await openDatabase(fresh);
    const applied = await sql<{ name: string }>`select name from llmop_migration`.execute(second.db);
    expect(applied.rows.map((row) => row.name)).toEqual(Object.keys(ledgerMigrations).sort());
    expect((await new LedgerRepository(second, { recordContent: true }).get(id))?.id).toBe(id);
    await second.close();
  });
});

function groupOf(generation: Generation, groupBy: UsageGroupBy): string {
  switch (groupBy) {
    case 'model':
      return generation.modelId;
    case 'caller':
      return generation.caller;
    case 'team':
      return generation.team ?? '';
    case 'day':
      return generation.createdAt.toISOString().slice(0, 10);
  }
}
