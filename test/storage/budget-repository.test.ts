import { sql } from 'kysely';
import { BudgetConflictError } from '../../src/storage/budget-errors';
import { BudgetRepository, countersIn, failureOf } from '../../src/storage/budget-repository';
import type { BudgetInput, ReserveResult } from '../../src/storage/budget-types';
import { usdToCostUnits } from '../../src/storage/cost-units';
import { type DatabaseSettings, type LedgerDatabase, openDatabase } from '../../src/storage/database';
import { newGenerationId } from '../../src/storage/generation-id';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import type { GenerationStatus } from '../../src/storage/ledger-types';
import { type LedgerStore, postgresStore, sqliteStore } from './ledger-stores';

/*
 * Budgets on both stores: CRUD, the reservation that cannot overspend (concurrent callers, two
 * connections), all-or-nothing across budgets, settling, periods and the backfill from the ledger.
 */

const NOW = new Date('2025-03-12T15:00:00.000Z'); // a Wednesday
const X = 12_345; // one reservation, in cost units

describe.each([
  ['SQLite', sqliteStore],
  ['PostgreSQL', postgresStore],
] as const)('budgets on %s', (_name, makeStore) => {
  const store: LedgerStore = makeStore();
  let settings: DatabaseSettings;
  let database: LedgerDatabase;
  let budgets: BudgetRepository;

  const create = (input: Partial<BudgetInput> = {}, at: Date = NOW) =>
    budgets.create({ scope: 'global', limitUnits: 10 * X, period: 'month', ...input }, at);
  const counterRows = async (budgetId: string) =>
    (await database.db.selectFrom('budget_usage').selectAll().where('budget_id', '=', budgetId).orderBy('period_start').execute()).map(
      (row) => ({ periodStart: Number(row.period_start), spent: Number(row.spent_units), reserved: Number(row.reserved_units) }),
    );

  beforeAll(async () => {
    await store.setUp();
    settings = await store.freshDatabase();
    database = await openDatabase(settings);
  });
  beforeEach(async () => {
    await database.transaction([
      database.db.deleteFrom('budget_usage').compile(),
      database.db.deleteFrom('budgets').compile(),
      database.db.deleteFrom('generations').compile(),
    ]);
    budgets = new BudgetRepository(database, { now: () => NOW });
  });
  afterAll(async () => {
    await database?.close();
    await store.tearDown();
  });

  describe('CRUD', () => {
    it('creates, reads, lists, updates and deletes a budget', async () => {
      const created = await budgets.create({ scope: 'key', subject: 'alice', modelId: 'tiny-chat', limitUnits: 500, period: 'week' });
      expect(created).toEqual({
        id: expect.stringMatching(/^bud_[0-9a-z]{20}$/),
        scope: 'key',
        subject: 'alice',
        modelId: 'tiny-chat',
        limitUnits: 500,
        period: 'week',
        createdAt: NOW,
        updatedAt: NOW,
        spentUnits: 0,
        reservedUnits: 0,
        remainingUnits: 500,
        periodStart: new Date('2025-03-10T00:00:00.000Z'),
        resetsAt: new Date('2025-03-17T00:00:00.000Z'),
      });
      expect(await budgets.get(created.id)).toEqual(created);
      const global = await create({ period: 'total' }, new Date(NOW.getTime() + 1));
      expect(global).toMatchObject({ scope: 'global', subject: null, modelId: null, periodStart: null, resetsAt: null });
      expect((await budgets.list()).map((budget) => budget.id)).toEqual([created.id, global.id]);

      const later = new Date(NOW.getTime() + 60_000);
      const updated = await budgets.update(created.id, 900, later);
      expect(updated).toMatchObject({ id: created.id, limitUnits: 900, remainingUnits: 900, createdAt: NOW, updatedAt: later });
      expect(await budgets.get(created.id)).toEqual(updated);

      expect(await budgets.delete(created.id)).toBe(true);
      expect(await budgets.get(created.id)).toBeUndefined();
      expect(await budgets.delete(created.id)).toBe(false);
      expect(await budgets.update(created.id, 1)).toBeUndefined();
      expect((await budgets.list()).map((budget) => budget.id)).toEqual([global.id]);
    });

    it('refuses a second budget with the same scope, subject, model and period (NULLs equal) with BudgetConflictError', async () => {
      await create();
      await expect(create({ limitUnits: 1 })).rejects.toBeInstanceOf(BudgetConflictError);
      await budgets.create({ scope: 'team', subject: 'red', modelId: 'm', limitUnits: 1, period: 'day' });
      await expect(budgets.create({ scope: 'team', subject: 'red', modelId: 'm', limitUnits: 2, period: 'day' })).rejects.toThrow(
        /A day budget for team "red" and model "m" exists already/,
      );
      // Any difference makes another budget.
      await create({ period: 'day' });
      await create({ modelId: 'm' });
      await budgets.create({ scope: 'key', subject: 'red', modelId: 'm', limitUnits: 1, period: 'day' });
      await budgets.create({ scope: 'team', subject: 'blue', modelId: 'm', limitUnits: 1, period: 'day' });
      await budgets.create({ scope: 'team', subject: 'red', limitUnits: 1, period: 'day' });
      expect(await budgets.list()).toHaveLength(7);
      // The refused ones left no counter behind.
      const counters = await database.db.selectFrom('budget_usage').select('budget_id').execute();
      expect(new Set(counters.map((row) => row.budget_id))).toEqual(new Set((await budgets.list()).map((budget) => budget.id)));
    });

    it('refuses bad input', async () => {
      await expect(create({ subject: 'alice' })).rejects.toThrow(TypeError);
      await expect(create({ scope: 'team' })).rejects.toThrow(TypeError);
      await expect(create({ scope: 'key', subject: '' })).rejects.toThrow(TypeError);
      await expect(create({ modelId: '' })).rejects.toThrow(TypeError);
      await expect(create({ scope: 'everyone' as never })).rejects.toThrow(TypeError);
      await expect(create({ period: 'year' as never })).rejects.toThrow(TypeError);
      await expect(create({ limitUnits: -1 })).rejects.toThrow(RangeError);
      await expect(create({ limitUnits: 1.5 })).rejects.toThrow(RangeError);
      const budget = await create();
      await expect(budgets.update(budget.id, -5)).rejects.toThrow(RangeError);
      expect(() => budgets.reserveStatements([budget.id], -1, NOW)).toThrow(RangeError);
      expect(await budgets.list()).toHaveLength(1);
    });

    it('finds the budgets that apply to a generation: global, its team, its key, for every model or its own', async () => {
      const global = await create();
      const globalChat = await create({ modelId: 'tiny-chat' });
      await create({ modelId: 'other-model' });
      const team = await budgets.create({ scope: 'team', subject: 'red', limitUnits: 1, period: 'day' });
      await budgets.create({ scope: 'team', subject: 'blue', limitUnits: 1, period: 'day' });
      const key = await budgets.create({ scope: 'key', subject: 'alice', limitUnits: 1, period: 'total' });
      await budgets.create({ scope: 'key', subject: 'red', limitUnits: 1, period: 'total' }); // a key named like the team
      await budgets.create({ scope: 'key', subject: 'bob', limitUnits: 1, period: 'total' });
      const ids = async (subject: Parameters<BudgetRepository['applying']>[0]) =>
        new Set((await budgets.applying(subject)).map((budget) => budget.id));
      expect(await ids({ caller: 'alice', team: 'red', modelId: 'tiny-chat' })).toEqual(
        new Set([global.id, globalChat.id, team.id, key.id]),
      );
      expect(await ids({ caller: 'alice', team: null, modelId: 'tiny-completion' })).toEqual(new Set([global.id, key.id]));
    });

    it('sees every change made since an earlier lookup (SQLite answers from a directory it forgets on each change)', async () => {
      const alice = { caller: 'alice', team: null, modelId: 'tiny-chat' };
      const first = await create();
      expect((await budgets.applying(alice)).map((budget) => budget.id)).toEqual([first.id]);
      const later = new Date(NOW.getTime() + 1000);
      const own = await budgets.create({ scope: 'key', subject: 'alice', limitUnits: X, period: 'day' }, later);
      expect((await budgets.applying(alice)).map((budget) => budget.id)).toEqual([first.id, own.id]); // oldest first
      await budgets.update(own.id, 2 * X);
      expect((await budgets.applying(alice)).find((budget) => budget.id === own.id)?.limitUnits).toBe(2 * X);
      await budgets.delete(first.id);
      expect((await budgets.applying(alice)).map((budget) => budget.id)).toEqual([own.id]);
      // A lookup racing a change never keeps what it read before the change.
      const racing = budgets.applying(alice);
      const third = await create({ modelId: 'tiny-chat' }, later);
      await racing;
      expect(new Set((await budgets.applying(alice)).map((budget) => budget.id))).toEqual(new Set([own.id, third.id]));
    });
  });

  describe('reservations', () => {
    const reserveMany = (repository: BudgetRepository, ids: readonly string[], count: number) =>
      Promise.all(Array.from({ length: count }, () => repository.reserve(ids, X, NOW)));

    it('50 concurrent reservations of X against a limit of 10 X: exactly 10 are held', async () => {
      const budget = await create();
      const results = await reserveMany(budgets, [budget.id], 50);
      expect(results.filter((result) => result.ok)).toHaveLength(10);
      for (const result of results) {
        if (result.ok) {
          expect(result.counters).toHaveLength(1);
          expect(result.counters[0]!.reservedUnits).toBeLessThanOrEqual(10 * X);
        } else {
          expect(result.refusal).toEqual({
            budgetId: budget.id,
            limitUnits: 10 * X,
            spentUnits: 0,
            reservedUnits: 10 * X,
            remainingUnits: 0,
          });
        }
      }
      // Every successful hold saw a different total: they ran one after another.
      const held = results.flatMap((result) => (result.ok ? [result.counters[0]!.reservedUnits] : []));
      expect(held.sort((left, right) => left - right)).toEqual(Array.from({ length: 10 }, (_, index) => (index + 1) * X));
      expect(await budgets.get(budget.id)).toMatchObject({ spentUnits: 0, reservedUnits: 10 * X, remainingUnits: 0 });
    });

    it('from two connections (two pools, two writing connections on SQLite), 25 each: exactly 10 in all', async () => {
      const budget = await create();
      const second = await openDatabase(settings);
      try {
        const elsewhere = new BudgetRepository(second, { now: () => NOW });
        const [here, there] = await Promise.all([reserveMany(budgets, [budget.id], 25), reserveMany(elsewhere, [budget.id], 25)]);
        const succeeded = [...here, ...there].filter((result) => result.ok).length;
        expect(succeeded).toBe(10);
        expect(await elsewhere.get(budget.id)).toMatchObject({ reservedUnits: 10 * X, remainingUnits: 0 });
      } finally {
        await second.close();
      }
    });

    it('holds on every applying budget or on none, naming the one without room', async () => {
      // Ids sort randomly: make the tight budget the last one visited, so the others' holds are rolled back.
      let roomy = await create({ limitUnits: 100 * X });
      let tight = await budgets.create({ scope: 'key', subject: 'alice', limitUnits: 3 * X, period: 'day' });
      if (tight.id < roomy.id) {
        [roomy, tight] = [
          await budgets.create({ scope: 'key', subject: 'alice', limitUnits: 100 * X, period: 'week' }),
          await budgets.update(roomy.id, 3 * X).then((updated) => updated!),
        ];
      }
      const other = await create({ modelId: 'tiny-chat', limitUnits: 100 * X });
      const ids = [tight.id, roomy.id, other.id];
      expect((await budgets.reserve(ids, 2 * X, NOW)).ok).toBe(true);
      const refused = await budgets.reserve(ids, 2 * X, NOW);
      expect(refused).toEqual<ReserveResult>({
        ok: false,
        refusal: { budgetId: tight.id, limitUnits: 3 * X, spentUnits: 0, reservedUnits: 2 * X, remainingUnits: X },
      });
      for (const id of ids) expect((await budgets.get(id))!.reservedUnits).toBe(2 * X);
      // What fits still fits.
      expect((await budgets.reserve(ids, X, NOW)).ok).toBe(true);
      expect((await budgets.get(tight.id))!.remainingUnits).toBe(0);
      expect((await budgets.get(roomy.id))!.reservedUnits).toBe(3 * X);
    });

    it('all-or-nothing under concurrency: two budgets, 40 concurrent holds, neither over its limit', async () => {
      const first = await create({ limitUnits: 7 * X });
      const second = await budgets.create({ scope: 'team', subject: 'red', limitUnits: 12 * X, period: 'month' });
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, index) => budgets.reserve(index % 2 === 0 ? [first.id, second.id] : [second.id], X, NOW)),
      );
      // Even ones hold on both budgets, odd ones on the second only.
      const both = results.filter((result, index) => index % 2 === 0 && result.ok).length;
      const secondOnly = results.filter((result, index) => index % 2 === 1 && result.ok).length;
      const firstState = (await budgets.get(first.id))!;
      const secondState = (await budgets.get(second.id))!;
      expect(firstState.reservedUnits).toBe(both * X);
      expect(secondState.reservedUnits).toBe((both + secondOnly) * X);
      expect(firstState.reservedUnits).toBeLessThanOrEqual(7 * X);
      expect(secondState.reservedUnits).toBe(12 * X); // the 20 single holds alone would fill it: it ends full
    });

    it('reserves nothing for an amount of 0 or no budgets, and leaves out a budget deleted meanwhile', async () => {
      const budget = await create({ limitUnits: 0 });
      expect(budgets.reserveStatements([budget.id], 0, NOW)).toEqual([]);
      expect(await budgets.reserve([budget.id], 0, NOW)).toEqual({ ok: true, counters: [] });
      expect(await budgets.reserve([], X, NOW)).toEqual({ ok: true, counters: [] });
      expect((await budgets.reserve([budget.id], 1, NOW)).ok).toBe(false); // a limit of 0 holds nothing
      const gone = await create({ period: 'day' });
      await budgets.delete(gone.id);
      const kept = await create({ period: 'week' });
      const result = await budgets.reserve([gone.id, kept.id], X, NOW);
      expect(result).toEqual({ ok: true, counters: [expect.objectContaining({ budgetId: kept.id, reservedUnits: X })] });
      expect(await budgets.reserve(['bud_missing'], X, NOW)).toEqual({ ok: true, counters: [] });
    });

    it('once its counters are prepared, a hold only updates them; a new day, or a budget deleted since, is still right', async () => {
      const budget = await create();
      expect(budgets.reserveStatements([budget.id], X, NOW)).toHaveLength(2); // creates the counter, then holds
      await budgets.prepareCounters([budget.id], NOW);
      expect(await counterRows(budget.id)).toEqual([{ periodStart: Date.parse('2025-03-01T00:00:00.000Z'), spent: 0, reserved: 0 }]);
      expect(budgets.reserveStatements([budget.id], X, NOW)).toHaveLength(1);
      expect(budgets.settleStatements([budget.id], X, X, NOW)).toHaveLength(1);
      expect(await budgets.reserve([budget.id], X, NOW)).toEqual({ ok: true, counters: [expect.objectContaining({ reservedUnits: X })] });
      await budgets.prepareCounters([budget.id], NOW); // idempotent
      expect((await counterRows(budget.id))[0]!.reserved).toBe(X);
      // The next day's counters are not known yet (a day may start a week or a month).
      const tomorrow = new Date(NOW.getTime() + 24 * 3600_000);
      expect(budgets.reserveStatements([budget.id], X, tomorrow)).toHaveLength(2);
      // A counter known to exist is deleted with its budget: the budget is left out, as before.
      await budgets.delete(budget.id);
      expect(await budgets.reserve([budget.id], X, NOW)).toEqual({ ok: true, counters: [] });
    });

    it('with counters: false, holds and refuses the same, returning no rows', async () => {
      const budget = await create({ limitUnits: 2 * X });
      await budgets.prepareCounters([budget.id], NOW);
      const held = await database.transaction(budgets.reserveStatements([budget.id], X, NOW, { counters: false }));
      expect(held).toEqual([{ changes: 1, rows: [] }]);
      expect(countersIn(held)).toEqual([]);
      expect((await budgets.get(budget.id))!.reservedUnits).toBe(X);
      const error = await database
        .transaction(budgets.reserveStatements([budget.id], 2 * X, NOW, { counters: false }))
        .catch((caught: unknown) => caught);
      expect(failureOf(error)).toEqual({
        kind: 'refused',
        refusal: { budgetId: budget.id, limitUnits: 2 * X, spentUnits: 0, reservedUnits: X, remainingUnits: X },
      });
      expect((await budgets.get(budget.id))!.reservedUnits).toBe(X);
    });

    it('a raised limit applies to the next reservation', async () => {
      const budget = await create({ limitUnits: X });
      expect((await budgets.reserve([budget.id], X, NOW)).ok).toBe(true);
      expect((await budgets.reserve([budget.id], X, NOW)).ok).toBe(false);
      await budgets.update(budget.id, 2 * X);
      expect((await budgets.reserve([budget.id], X, NOW)).ok).toBe(true);
    });

    it('runs inside a larger transaction: a refusal rolls back the statements around it', async () => {
      const budget = await create({ limitUnits: X });
      const ledgerRow = (id: string) =>
        database.db
          .insertInto('generations')
          .values({
            id,
            request_id: 'req',
            caller: 'alice',
            team: null,
            source: 'generate',
            model_id: 'tiny-chat',
            provider: 'vllm',
            upstream_model: 'tiny-chat',
            status: 'in_progress',
            error: null,
            finish_reason: null,
            prompt: null,
            text: null,
            prompt_name: null,
            prompt_version: null,
            evaluation_id: null,
            max_tokens: 10,
            temperature: 1,
            top_p: 1,
            input_tokens: 0,
            output_tokens: 0,
            cost_units: 0,
            latency_ms: null,
            attempts: '[]',
            created_at: NOW.getTime(),
            finished_at: null,
          })
          .compile();
      const first = newGenerationId(NOW);
      const results = await database.transaction([ledgerRow(first), ...budgets.reserveStatements([budget.id], X, NOW)]);
      expect(countersIn(results)).toEqual([
        { budgetId: budget.id, periodStartMs: Date.UTC(2025, 2, 1), spentUnits: 0, reservedUnits: X, limitUnits: X },
      ]);

      const second = newGenerationId(NOW);
      const error = await database
        .transaction([ledgerRow(second), ...budgets.reserveStatements([budget.id], 1, NOW)])
        .catch((caught: unknown) => caught);
      expect(failureOf(error)).toEqual({
        kind: 'refused',
        refusal: { budgetId: budget.id, limitUnits: X, spentUnits: 0, reservedUnits: X, remainingUnits: 0 },
      });
      expect(failureOf(new Error('unrelated'))).toBeUndefined();
      const ids = (await database.db.selectFrom('generations').select('id').execute()).map((row) => row.id);
      expect(ids).toEqual([first]);
    });
  });

  describe('held generations in the ledger', () => {
    const startOf = (index: number) => {
      const createdAt = new Date(NOW.getTime() + index);
      return {
        id: newGenerationId(createdAt),
        requestId: `held-${index}`,
        caller: 'alice',
        team: null,
        source: 'generate' as const,
        modelId: 'tiny-chat',
        provider: 'vllm',
        upstreamModel: 'tiny-chat',
        prompt: 'held',
        promptRef: null,
        evaluationId: null,
        parameters: { maxTokens: 10, temperature: 1, topP: 1 },
        createdAt,
      };
    };

    it('a held start is one statement on PostgreSQL (one round trip), and a refusal still names the budget without room', async () => {
      const roomy = await create({ limitUnits: 100 * X });
      const tight = await budgets.create({ scope: 'key', subject: 'alice', limitUnits: 3 * X, period: 'day' });
      const sent: string[] = [];
      const logged = await openDatabase({ ...settings, onQuery: (statement) => sent.push(statement) });
      const loggedBudgets = new BudgetRepository(logged, { now: () => NOW });
      const ledger = new LedgerRepository(logged, { recordContent: false, budgets: loggedBudgets, now: () => NOW });
      try {
        const hold = { budgetIds: [roomy.id, tight.id], amountsUnits: [2 * X] };
        await loggedBudgets.prepareCounters(hold.budgetIds, NOW);
        sent.length = 0;
        await ledger.startHeld([startOf(0)], hold);
        // On SQLite every write goes to the writing connection, not through Kysely's log.
        expect(sent).toHaveLength(database.kind === 'postgres' ? 1 : 0);
        if (database.kind === 'postgres')
          expect(sent[0]).toMatch(/^with hold_0 as \(update budget_usage .* hold_1 as .* written as \(insert into "generations"/s);
        const refused = await ledger.startHeld([startOf(1)], hold).catch((error: unknown) => error);
        expect(refused).toMatchObject({
          name: 'BudgetRefusedError',
          refusal: { budgetId: tight.id, limitUnits: 3 * X, spentUnits: 0, reservedUnits: 2 * X, remainingUnits: X },
        });
        expect((await budgets.get(roomy.id))!.reservedUnits).toBe(2 * X); // the refused hold left nothing on the roomy one
        expect(await database.db.selectFrom('generations').select('id').execute()).toHaveLength(1);
      } finally {
        await ledger.drained();
        await logged.close();
      }
    });

    /** A ledger whose budgets hold on the counters, or in memory where this process alone writes (SQLite only). */
    const ledgerHolding = (soleWriter: boolean) => {
      const heldBy = new BudgetRepository(database, { now: () => NOW, soleWriter });
      return { heldBy, ledger: new LedgerRepository(database, { recordContent: false, budgets: heldBy, now: () => NOW }) };
    };
    const succeeded = (costUsd: number) => ({
      status: 'succeeded' as const,
      error: null,
      finishReason: 'stop',
      text: null,
      inputTokens: 3,
      outputTokens: 2,
      costUsd,
      latencyMs: 10,
      attempts: [],
    });

    it.each([
      ['on the counters', false],
      ['in memory where this process alone writes (SQLite; PostgreSQL ignores it)', true],
    ])('holds started together fail alone, %s: exactly what fits is held, plain rows beside them commit', async (_mode, soleWriter) => {
      const budget = await create({ limitUnits: 6 * X });
      const { heldBy, ledger } = ledgerHolding(soleWriter);
      try {
        // Rows in flight make the ledger group its writes by turn of the event loop.
        const plain = [startOf(100), startOf(101)];
        const held = Array.from({ length: 10 }, (_, index) => startOf(index));
        const settled = await Promise.allSettled([
          ...plain.map((start) => ledger.start(start)),
          ...held.map((start) => ledger.startHeld([start], { budgetIds: [budget.id], amountsUnits: [X] })),
        ]);
        expect(settled.slice(0, 2).map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled']);
        const heldOutcomes = settled.slice(2);
        expect(heldOutcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(6);
        for (const outcome of heldOutcomes.filter((result) => result.status === 'rejected')) {
          expect((outcome as PromiseRejectedResult).reason).toMatchObject({ name: 'BudgetRefusedError' });
        }
        expect(await heldBy.get(budget.id)).toMatchObject({ reservedUnits: 6 * X, remainingUnits: 0 });
        const inMemory = soleWriter && database.kind === 'sqlite';
        expect((await counterRows(budget.id))[0]!.reserved).toBe(inMemory ? 0 : 6 * X);
        const rows = await database.db.selectFrom('generations').select(['id', 'reserved_units']).execute();
        expect(rows).toHaveLength(8); // the refused holds wrote no row
        // Finished together: each settles its own hold.
        const finished = held.filter((_, index) => heldOutcomes[index]!.status === 'fulfilled');
        await Promise.all([
          ...finished.map((start) => ledger.finish(start.id, succeeded(6_000 / 1e10))),
          ...plain.map((start) => ledger.finish(start.id, succeeded(0))),
        ]);
        const after = (await heldBy.get(budget.id))!;
        expect(after.reservedUnits).toBe(0);
        expect(after.spentUnits).toBe(6 * 6_000);
        expect(await budgets.spentFromLedger(after)).toBe(after.spentUnits);
        expect(await counterRows(budget.id)).toEqual([{ periodStart: after.periodStart!.getTime(), spent: 6 * 6_000, reserved: 0 }]);
      } finally {
        await ledger.drained();
      }
    });

    it('where this process alone writes SQLite, a hold lives in memory until its settlement commits, and is released exactly once', async () => {
      const budget = await create({ limitUnits: 3 * X });
      const { heldBy, ledger } = ledgerHolding(true);
      const inMemory = database.kind === 'sqlite';
      expect(heldBy.holdsInMemory).toBe(inMemory);
      const hold = { budgetIds: [budget.id], amountsUnits: [2 * X] };
      try {
        const first = startOf(0);
        await ledger.startHeld([first], hold);
        expect(heldBy.heldInMemory(first.id)).toBe(inMemory);
        expect((await counterRows(budget.id))[0]?.reserved ?? 0).toBe(inMemory ? 0 : 2 * X);
        expect(await heldBy.get(budget.id)).toMatchObject({ spentUnits: 0, reservedUnits: 2 * X, remainingUnits: X });
        expect(await heldBy.list()).toMatchObject([{ id: budget.id, reservedUnits: 2 * X }]);
        // A second hold sees the first: refused, naming what is held.
        const refused = await ledger.startHeld([startOf(1)], hold).catch((error: unknown) => error);
        expect(refused).toMatchObject({
          name: 'BudgetRefusedError',
          refusal: { budgetId: budget.id, limitUnits: 3 * X, spentUnits: 0, reservedUnits: 2 * X, remainingUnits: X },
        });

        // The finish adds the spend and releases the hold: the room comes back. Not before the
        // settlement has committed and its counter is known: until then the hold still counts.
        const finishing = ledger.finish(first.id, succeeded(5_000 / 1e10));
        expect(heldBy.heldInMemory(first.id)).toBe(inMemory);
        await finishing;
        expect(heldBy.heldInMemory(first.id)).toBe(false);
        expect(await heldBy.get(budget.id)).toMatchObject({ spentUnits: 5_000, reservedUnits: 0 });

        // A generation that never finished in time: the sweep settles its hold at the full amount, once.
        const stuck = startOf(2);
        await ledger.startHeld([stuck], hold);
        expect(await ledger.closeInterrupted(new Date(NOW.getTime() + 60_000))).toBe(1);
        expect(heldBy.heldInMemory(stuck.id)).toBe(false);
        await expect(ledger.finish(stuck.id, succeeded(1_000 / 1e10))).rejects.toMatchObject({ name: 'TransactionConditionError' });
        const swept = (await heldBy.get(budget.id))!;
        expect(swept).toMatchObject({ spentUnits: 5_000 + 2 * X, reservedUnits: 0 });
        expect(await budgets.spentFromLedger(swept)).toBe(swept.spentUnits);
        // The hold sees the sweep's settlement: exactly what is left fits, one unit more does not.
        const left = 3 * X - swept.spentUnits;
        const overByOne = await ledger
          .startHeld([startOf(4)], { budgetIds: [budget.id], amountsUnits: [left + 1] })
          .catch((error: unknown) => error);
        expect(overByOne).toMatchObject({ name: 'BudgetRefusedError', refusal: { spentUnits: swept.spentUnits, remainingUnits: left } });
        const exact = startOf(5);
        await ledger.startHeld([exact], { budgetIds: [budget.id], amountsUnits: [left] });
        await ledger.finish(exact.id, succeeded(0));

        // A generation is held once: a call naming it twice holds nothing.
        const twice = startOf(6);
        await expect(ledger.startHeld([twice, twice], { budgetIds: [budget.id], amountsUnits: [1, 1] })).rejects.toThrow();
        expect(heldBy.heldInMemory(twice.id)).toBe(false);

        // Rows that cannot be written give their holds back.
        await ledger.close();
        const unwritten = [startOf(3), startOf(7)];
        await expect(ledger.startHeld(unwritten, { budgetIds: [budget.id], amountsUnits: [500, 500] })).rejects.toMatchObject({
          name: 'LedgerClosedError',
        });
        expect(unwritten.some((start) => heldBy.heldInMemory(start.id))).toBe(false);
        expect(await heldBy.get(budget.id)).toMatchObject({ reservedUnits: 0 });
      } finally {
        await ledger.drained();
      }
    });

    it('in memory, a finish and a sweep racing for one row settle it once; a settle() and a new period are seen', async () => {
      const budget = await create({ limitUnits: 10 * X, period: 'day' });
      const { heldBy, ledger } = ledgerHolding(true);
      const hold = { budgetIds: [budget.id], amountsUnits: [2 * X] };
      try {
        const racing = startOf(0);
        await ledger.startHeld([racing], hold);
        const [swept, finished] = await Promise.allSettled([
          ledger.closeInterrupted(new Date(NOW.getTime() + 60_000)),
          ledger.finish(racing.id, succeeded(1_000 / 1e10)),
        ]);
        const sweepWon = swept.status === 'fulfilled' && swept.value === 1;
        expect(finished.status).toBe(sweepWon ? 'rejected' : 'fulfilled'); // exactly one of them settled it
        expect(heldBy.heldInMemory(racing.id)).toBe(false);
        const after = (await heldBy.get(budget.id))!;
        expect(after).toMatchObject({ spentUnits: sweepWon ? 2 * X : 1_000, reservedUnits: 0 });
        expect(await budgets.spentFromLedger(after)).toBe(after.spentUnits);

        // Spend settled by settle() (no row of this ledger) is seen by the next hold.
        await heldBy.settle([budget.id], 0, 10 * X - after.spentUnits - X, NOW);
        await expect(ledger.startHeld([startOf(1)], hold)).rejects.toMatchObject({ refusal: { remainingUnits: X } });

        // The next day's counter starts from zero: the whole limit fits.
        const tomorrow = { ...startOf(2), createdAt: new Date(NOW.getTime() + 86_400_000) };
        await ledger.startHeld([tomorrow], { budgetIds: [budget.id], amountsUnits: [10 * X] });
        expect(await heldBy.get(budget.id, tomorrow.createdAt)).toMatchObject({ spentUnits: 0, reservedUnits: 10 * X, remainingUnits: 0 });
        expect(await heldBy.get(budget.id)).toMatchObject({ reservedUnits: 0 }); // today's holds are not tomorrow's
        await ledger.finish(tomorrow.id, succeeded(0));
      } finally {
        await ledger.drained();
      }
    });

    it('in memory, a changed limit applies to the next hold; holds on the counters (reserve) are refused there', async () => {
      const budget = await create({ limitUnits: 3 * X });
      const { heldBy, ledger } = ledgerHolding(true);
      const hold = { budgetIds: [budget.id], amountsUnits: [2 * X] };
      try {
        await ledger.startHeld([startOf(0)], hold);
        await expect(ledger.startHeld([startOf(1)], hold)).rejects.toMatchObject({ name: 'BudgetRefusedError' });
        await heldBy.update(budget.id, 4 * X);
        await ledger.startHeld([startOf(2)], hold);
        await heldBy.update(budget.id, 5 * X);
        await expect(ledger.startHeld([startOf(3)], hold)).rejects.toMatchObject({
          refusal: { limitUnits: 5 * X, reservedUnits: 4 * X, remainingUnits: X },
        });
        if (heldBy.holdsInMemory) await expect(heldBy.reserve([budget.id], X, NOW)).rejects.toThrow(/holds in memory/);
      } finally {
        await ledger.drained();
      }
    });

    it('a budget deleted while holds are in memory stops applying; its holds are released all the same', async () => {
      const kept = await create({ limitUnits: 10 * X });
      const deleted = await budgets.create({ scope: 'key', subject: 'alice', limitUnits: 10 * X, period: 'day' });
      const { heldBy, ledger } = ledgerHolding(true);
      try {
        const first = startOf(0);
        await ledger.startHeld([first], { budgetIds: [kept.id, deleted.id], amountsUnits: [X] });
        expect(await heldBy.delete(deleted.id)).toBe(true);
        const second = startOf(1);
        await ledger.startHeld([second], { budgetIds: [kept.id, deleted.id], amountsUnits: [X] });
        const rows = await database.db.selectFrom('generations').select(['id', 'budget_ids']).orderBy('id').execute();
        expect(rows.find((row) => row.id === second.id)?.budget_ids).toBe(JSON.stringify([kept.id]));
        expect(await heldBy.get(kept.id)).toMatchObject({ reservedUnits: 2 * X });
        await ledger.finish(first.id, succeeded(100 / 1e10));
        await ledger.finish(second.id, succeeded(100 / 1e10));
        expect(await heldBy.get(kept.id)).toMatchObject({ spentUnits: 200, reservedUnits: 0 });
        expect(heldBy.heldInMemory(first.id) || heldBy.heldInMemory(second.id)).toBe(false);
      } finally {
        await ledger.drained();
      }
    });
  });

  describe('settling', () => {
    it('moves the hold to spend at the actual cost, so what was not spent can be reserved again', async () => {
      const budget = await create();
      for (let index = 0; index < 10; index++) expect((await budgets.reserve([budget.id], X, NOW)).ok).toBe(true);
      expect((await budgets.reserve([budget.id], X, NOW)).ok).toBe(false);
      const counters = await budgets.settle([budget.id], X, Math.floor(X / 2), NOW);
      expect(counters).toEqual([
        {
          budgetId: budget.id,
          periodStartMs: Date.UTC(2025, 2, 1),
          spentUnits: Math.floor(X / 2),
          reservedUnits: 9 * X,
          limitUnits: 10 * X,
        },
      ]);
      expect(await budgets.get(budget.id)).toMatchObject({
        spentUnits: Math.floor(X / 2),
        reservedUnits: 9 * X,
        remainingUnits: X - Math.floor(X / 2),
      });
      expect((await budgets.reserve([budget.id], X, NOW)).ok).toBe(false);
      expect((await budgets.reserve([budget.id], X - Math.floor(X / 2), NOW)).ok).toBe(true);
      // Settling all holds at their full amount leaves spend at the limit and nothing held.
      await budgets.settle([budget.id], X - Math.floor(X / 2), X - Math.floor(X / 2), NOW);
      for (let index = 0; index < 9; index++) await budgets.settle([budget.id], X, X, NOW);
      expect(await budgets.get(budget.id)).toMatchObject({ spentUnits: 10 * X, reservedUnits: 0, remainingUnits: 0 });
    });

    it('never makes the hold negative, and counts spend that had no hold (or more than its hold)', async () => {
      const budget = await create();
      await budgets.reserve([budget.id], X, NOW);
      await budgets.settle([budget.id], 5 * X, 2 * X, NOW); // more released than held
      expect(await budgets.get(budget.id)).toMatchObject({ spentUnits: 2 * X, reservedUnits: 0 });
      const fresh = await create({ period: 'day' });
      expect(await counterRows(fresh.id)).toHaveLength(1);
      await database.write(database.db.deleteFrom('budget_usage').where('budget_id', '=', fresh.id).compile());
      await budgets.settle([fresh.id], 0, 3 * X, NOW); // the counter row is made
      expect(await budgets.get(fresh.id)).toMatchObject({ spentUnits: 3 * X, reservedUnits: 0 });
      expect(budgets.settleStatements([fresh.id], 0, 0, NOW)).toEqual([]);
    });

    it('settles several budgets together, and a deleted one is skipped', async () => {
      const first = await create();
      const second = await create({ period: 'week' });
      await budgets.reserve([first.id, second.id], 2 * X, NOW);
      await budgets.delete(second.id);
      const counters = await budgets.settle([first.id, second.id], 2 * X, X, NOW);
      expect(counters.map((counter) => counter.budgetId)).toEqual([first.id]);
      expect(await budgets.get(first.id)).toMatchObject({ spentUnits: X, reservedUnits: 0 });
    });
  });

  describe('periods', () => {
    it('a new period counts from zero in a new counter row; the old period keeps its own', async () => {
      const dayOne = new Date('2025-03-12T23:59:59.999Z');
      const dayTwo = new Date('2025-03-13T00:00:00.000Z');
      const budget = await create({ period: 'day', limitUnits: X }, dayOne);
      expect((await budgets.reserve([budget.id], X, dayOne)).ok).toBe(true);
      expect((await budgets.reserve([budget.id], X, dayOne)).ok).toBe(false);
      expect((await budgets.reserve([budget.id], X, dayTwo)).ok).toBe(true);
      // The first day's hold is settled into the first day, even though it ends on the second.
      await budgets.settle([budget.id], X, X, dayOne);
      expect(await counterRows(budget.id)).toEqual([
        { periodStart: Date.UTC(2025, 2, 12), spent: X, reserved: 0 },
        { periodStart: Date.UTC(2025, 2, 13), spent: 0, reserved: X },
      ]);
      expect(await budgets.get(budget.id, dayOne)).toMatchObject({
        spentUnits: X,
        reservedUnits: 0,
        periodStart: new Date(Date.UTC(2025, 2, 12)),
      });
      expect(await budgets.get(budget.id, dayTwo)).toMatchObject({
        spentUnits: 0,
        reservedUnits: X,
        resetsAt: new Date(Date.UTC(2025, 2, 14)),
      });
      // A day with no counter yet reads as untouched.
      expect(await budgets.get(budget.id, new Date('2025-03-20T10:00:00Z'))).toMatchObject({
        spentUnits: 0,
        reservedUnits: 0,
        remainingUnits: X,
      });
    });

    it('weeks roll over on Monday, months on the first, and a total budget never', async () => {
      const week = await create({ period: 'week', limitUnits: X });
      const month = await create({ period: 'month', limitUnits: X });
      const total = await create({ period: 'total', limitUnits: 2 * X });
      const sunday = new Date('2025-03-30T23:00:00Z');
      const monday = new Date('2025-03-31T00:00:00Z');
      const april = new Date('2025-04-01T00:00:00Z');
      expect((await budgets.reserve([week.id, month.id, total.id], X, sunday)).ok).toBe(true);
      expect(await budgets.reserve([week.id, month.id], X, monday)).toMatchObject({ ok: false, refusal: { budgetId: month.id } });
      expect((await budgets.reserve([week.id], X, monday)).ok).toBe(true);
      expect((await budgets.reserve([month.id, total.id], X, april)).ok).toBe(true);
      expect((await budgets.reserve([total.id], X, new Date('2030-01-01T00:00:00Z'))).ok).toBe(false);
      // The first row of each is the creation period's (12 March), made by create().
      expect((await counterRows(week.id)).map((row) => row.periodStart)).toEqual([
        Date.UTC(2025, 2, 10),
        Date.UTC(2025, 2, 24),
        Date.UTC(2025, 2, 31),
      ]);
      expect((await counterRows(month.id)).map((row) => row.periodStart)).toEqual([Date.UTC(2025, 2, 1), Date.UTC(2025, 3, 1)]);
      expect(await counterRows(total.id)).toEqual([{ periodStart: 0, spent: 0, reserved: 2 * X }]);
    });
  });

  describe('backfill from the ledger', () => {
    interface Seed {
      readonly at: string;
      readonly caller?: string;
      readonly team?: string | null;
      readonly modelId?: string;
      readonly costUsd: number;
      readonly status?: GenerationStatus | 'in_progress';
    }

    async function seed(rows: readonly Seed[]): Promise<void> {
      let clock = NOW;
      const ledger = new LedgerRepository(database, { recordContent: false, now: () => clock });
      try {
        for (const [index, row] of rows.entries()) {
          const createdAt = new Date(row.at);
          const id = newGenerationId(createdAt);
          await ledger.start({
            id,
            requestId: `seed-${index}`,
            caller: row.caller ?? 'alice',
            team: row.team === undefined ? 'red' : row.team,
            source: 'generate',
            modelId: row.modelId ?? 'tiny-chat',
            provider: 'vllm',
            upstreamModel: 'tiny-chat-v1',
            prompt: 'seeded',
            promptRef: null,
            evaluationId: null,
            parameters: { maxTokens: 100, temperature: 0.7, topP: 1 },
            createdAt,
          });
          if (row.status === 'in_progress') continue;
          clock = new Date(createdAt.getTime() + 10);
          await ledger.finish(id, {
            status: row.status ?? 'succeeded',
            error: null,
            finishReason: 'stop',
            text: null,
            inputTokens: 3,
            outputTokens: 2,
            costUsd: row.costUsd,
            latencyMs: 10,
            attempts: [],
          });
        }
      } finally {
        await ledger.drained();
      }
    }

    it("a new budget's counter starts at the period's settled spend that applies to it", async () => {
      await seed([
        { at: '2025-03-01T00:00:00.000Z', costUsd: 0.001 }, // first instant of March
        { at: '2025-03-12T10:00:00.000Z', costUsd: 0.002 },
        { at: '2025-03-12T11:00:00.000Z', costUsd: 0.004, status: 'failed' }, // billed though failed
        { at: '2025-03-12T12:00:00.000Z', costUsd: 0.008, status: 'cancelled' },
        { at: '2025-03-12T13:00:00.000Z', costUsd: 0.5, status: 'in_progress' }, // not settled: never counts
        { at: '2025-03-12T14:00:00.000Z', costUsd: 0.016, caller: 'bob', team: 'blue' },
        { at: '2025-03-12T14:30:00.000Z', costUsd: 0.032, caller: 'carol', team: null, modelId: 'tiny-completion' },
        { at: '2025-03-11T09:00:00.000Z', costUsd: 0.064, modelId: 'tiny-completion' }, // Tuesday
        { at: '2025-02-28T23:59:59.999Z', costUsd: 0.128 }, // last instant of February
        { at: '2025-03-13T00:00:00.000Z', costUsd: 0.256 }, // tomorrow (a clock ahead elsewhere)
        { at: '2025-04-01T00:00:00.000Z', costUsd: 0.512 }, // next month
      ]);
      const units = (...usd: number[]) => usd.reduce((sum, value) => sum + usdToCostUnits(value), 0);
      const cases: Array<[Partial<BudgetInput>, number]> = [
        [{ period: 'month' }, units(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.256)],
        [{ period: 'total' }, units(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512)],
        [{ period: 'day' }, units(0.002, 0.004, 0.008, 0.016, 0.032)],
        [{ period: 'week' }, units(0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.256)],
        [{ scope: 'key', subject: 'alice', period: 'month' }, units(0.001, 0.002, 0.004, 0.008, 0.064, 0.256)],
        [{ scope: 'key', subject: 'alice', modelId: 'tiny-completion', period: 'week' }, units(0.064)],
        [{ scope: 'team', subject: 'red', period: 'day' }, units(0.002, 0.004, 0.008)],
        [{ scope: 'team', subject: 'blue', period: 'total' }, units(0.016)],
        [{ modelId: 'tiny-completion', period: 'day' }, units(0.032)],
        [{ scope: 'key', subject: 'nobody', period: 'month' }, 0],
      ];
      for (const [input, expected] of cases) {
        const budget = await create({ limitUnits: usdToCostUnits(2), ...input });
        expect({ input, spent: budget.spentUnits }).toEqual({ input, spent: expected });
        expect(await budgets.spentFromLedger(budget)).toBe(expected);
        expect(budget.remainingUnits).toBe(usdToCostUnits(2) - expected);
      }
    });

    it('what the ledger already spent counts against the limit', async () => {
      await seed([{ at: '2025-03-12T10:00:00.000Z', costUsd: 0.000_007 }]);
      const budget = await create({ limitUnits: usdToCostUnits(0.000_01) });
      expect(budget.spentUnits).toBe(usdToCostUnits(0.000_007));
      const refused = await budgets.reserve([budget.id], usdToCostUnits(0.000_004), NOW);
      expect(refused).toMatchObject({ ok: false, refusal: { remainingUnits: usdToCostUnits(0.000_003) } });
      expect((await budgets.reserve([budget.id], usdToCostUnits(0.000_003), NOW)).ok).toBe(true);
      // spentFromLedger reads another period on request.
      expect(await budgets.spentFromLedger(budget, new Date('2025-04-02T00:00:00Z'))).toBe(0);
    });
  });

  it('keeps the counters exact in both stores near the largest amounts (BIGINT, no rounding)', async () => {
    const limit = Number.MAX_SAFE_INTEGER - 10;
    const budget = await create({ limitUnits: limit, period: 'total' });
    expect((await budgets.reserve([budget.id], limit - 3, NOW)).ok).toBe(true);
    expect((await budgets.reserve([budget.id], 4, NOW)).ok).toBe(false);
    expect((await budgets.reserve([budget.id], 3, NOW)).ok).toBe(true);
    expect(await budgets.get(budget.id)).toMatchObject({ reservedUnits: limit, remainingUnits: 0 });
  });

  it('leaves the counters readable as plain SQL', async () => {
    const budget = await create();
    await budgets.reserve([budget.id], X, NOW);
    const rows = await sql<{ reserved_units: number }>`select reserved_units from budget_usage where budget_id = ${budget.id}`.execute(
      database.db,
    );
    expect(rows.rows.map((row) => Number(row.reserved_units))).toEqual([X]);
  });
});
