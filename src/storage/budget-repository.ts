import { randomBytes } from 'node:crypto';
import { CompiledQuery, type Expression, type ExpressionBuilder, type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { BudgetDirectory } from './budget-directory';
import { counterKey, MemoryHolds } from './budget-memory-holds';
import { BudgetConflictError, BudgetVanishedError } from './budget-errors';
import { type BudgetPeriod, isBudgetPeriod, periodOf, periodStartMs } from './budget-periods';
import {
  BUDGET_SCOPES,
  type Budget,
  type BudgetCounter,
  type BudgetInput,
  type BudgetRefusal,
  type BudgetScope,
  type BudgetState,
  type BudgetSubject,
  type ReserveResult,
} from './budget-types';
import { type LedgerDatabase, type StatementResult, TransactionConditionError, type TransactionStatement } from './database';
import type { BudgetsTable, Database } from './schema';
import { type BoundStatement, statementTemplate } from './statement-template';

export interface BudgetRepositorySettings {
  /** The clock for `created_at`, `updated_at` and the default period; injected by tests. */
  readonly now?: () => Date;
  /**
   * True when this process alone writes the database (the SQLite file under openLedger's owner
   * lock): the ledger's holds are then kept in memory (`holdInMemory`). Ignored on PostgreSQL.
   */
  readonly soleWriter?: boolean;
}

/** What `holdInMemory` came to: held on `budgetIds` (those still existing), or refused by a budget without room. */
export type MemoryHoldResult =
  | { readonly ok: true; readonly budgetIds: readonly string[] }
  | { readonly ok: false; readonly refusal: BudgetRefusal };

/** Why a reservation's transaction was rolled back, when a budget was the reason. */
export type ReservationFailure =
  | { readonly kind: 'refused'; readonly refusal: BudgetRefusal }
  /** The budget was deleted after the caller looked it up: it no longer applies. */
  | { readonly kind: 'vanished'; readonly budgetId: string };

/** Why `holdStatements` failed: a budget's reason, or (PostgreSQL) none found by the time it was looked for: try again. */
export type HoldFailure = ReservationFailure | { readonly kind: 'retry' };

/** PostgreSQL's division_by_zero: how the one-statement hold says that a budget did not hold (see `holdStatements`). */
const HOLD_MISSED = '22012';
/** PostgreSQL's deadlock_detected: the transaction was rolled back, and may be tried again. */
const DEADLOCK = '40P01';

const RESERVE_LABEL = 'budget-reserve:';
const IN_PROGRESS = 'in_progress';
const UNIQUE_VIOLATIONS = new Set(['SQLITE_CONSTRAINT_UNIQUE', '23505']);
const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * Budgets and their per-period counters (budget_usage: one row per budget and period, so a
 * reservation reads and updates one row per budget, never a period's ledger rows).
 *
 * A reservation is a conditional UPDATE of each applying budget's counter row in one transaction
 * (`spent + reserved + amount <= limit`): all budgets hold the amount, or none does. The rows are
 * created first (INSERT … ON CONFLICT DO NOTHING) so that on PostgreSQL the UPDATE always finds a
 * row to lock: a concurrent reservation waits for the lock and re-checks the condition against
 * the committed counters, so two connections can never both pass. Budgets are always visited in
 * id order, so concurrent transactions lock rows in the same order and cannot deadlock. On SQLite
 * every transaction runs on the one writing connection, one after another; and where this process
 * alone writes the file (`soleWriter`), the ledger's holds are not on the counters at all but in
 * its memory (`holdInMemory`, budget-memory-holds.ts), so a held start writes only its row.
 *
 * Every method that takes an instant `at` counts in the period containing it: pass the
 * generation's start time (the ledger row's `created_at`) to both `reserve` and `settle`, so the
 * hold and its settlement land in the same period's counter as the row does.
 */
export class BudgetRepository {
  private readonly db: Kysely<Database>;
  private readonly now: () => Date;
  // A budgeted generation runs these on every call; compiled once (statement-template.ts).
  private readonly applyingToCaller: BoundStatement<[caller: string, modelId: string]>;
  private readonly applyingToTeamMember: BoundStatement<[caller: string, team: string, modelId: string]>;
  private readonly reserveOne: BoundStatement<[id: string, amountUnits: number, ...starts: PeriodStartValues]>;
  /** `reserveOne` without RETURNING: for a caller that reads no counter (~7 µs less per hold on SQLite). */
  private readonly holdOne: BoundStatement<[id: string, amountUnits: number, ...starts: PeriodStartValues]>;
  private readonly explainReserve: BoundStatement<[id: string, ...starts: PeriodStartValues]>;
  private readonly settleOne: BoundStatement<[id: string, actualUnits: number, reservedUnits: number, ...starts: PeriodStartValues]>;
  /**
   * On SQLite, the budgets as last read, for `applying`: one process owns the file and every change
   * to a budget goes through this repository, which forgets the directory once the change has
   * committed. Replicas sharing PostgreSQL change budgets behind each other's backs: there every
   * `applying` reads the table.
   */
  private directory: Promise<BudgetDirectory> | undefined;
  /** By how many budgets it creates counters for. */
  private readonly ensureCountersFor = new Map<number, BoundStatement<unknown[]>>();
  /**
   * Counters this process knows exist, as `id@day`: a day (its start, ms) fixes the day, week and
   * month containing it, so the counter a reservation for any instant of it updates. Where known, a
   * reservation or settlement only updates the counter; creating it in the same transaction (the
   * INSERT … ON CONFLICT DO NOTHING) costs more than the update itself. Learnt by `prepareCounters`;
   * only the latest day's are kept. A counter is deleted only with its budget, and then the update
   * matches nothing: the budget has vanished, as it would have without this.
   */
  private readonly counted = new Set<string>();
  private countedDay = 0;
  /** The ledger's holds, where this process alone writes an SQLite file (it has `readNow`); else holds are on the counters. */
  private readonly memoryHolds: MemoryHolds | undefined;

  constructor(
    private readonly database: LedgerDatabase,
    settings: BudgetRepositorySettings = {},
  ) {
    this.db = database.db;
    this.now = settings.now ?? (() => new Date());
    this.memoryHolds = settings.soleWriter && database.readNow ? new MemoryHolds() : undefined;
    this.applyingToCaller = statementTemplate(2, (caller, modelId) => this.applyingQuery(caller, null, modelId).compile());
    this.applyingToTeamMember = statementTemplate(3, (caller, team, modelId) => this.applyingQuery(caller, team, modelId).compile());
    const holdOne = (id: unknown, amountUnits: unknown, starts: PeriodStartValues) =>
      sql`update budget_usage set reserved_units = reserved_units + ${bigint(amountUnits as number)}
        where budget_id = ${id}
          and period_start = (select ${periodStartOf(sql.ref('budgets.period'), starts)} from budgets where budgets.id = ${id})
          and spent_units + reserved_units + ${bigint(amountUnits as number)} <= (select limit_units from budgets where budgets.id = ${id})`;
    this.reserveOne = statementTemplate(5, (id, amountUnits, ...starts) => {
      return sql`${holdOne(id, amountUnits, starts)}
        returning ${COUNTER_COLUMNS}, (select limit_units from budgets where budgets.id = ${id}) as limit_units`.compile(this.db);
    });
    this.holdOne = statementTemplate(5, (id, amountUnits, ...starts) => holdOne(id, amountUnits, starts).compile(this.db));
    this.explainReserve = statementTemplate(4, (id, ...starts) => {
      return sql`select b.id as budget_id, b.period as period, b.limit_units as limit_units,
          coalesce(u.spent_units, 0) as spent_units, coalesce(u.reserved_units, 0) as reserved_units
        from budgets b left join budget_usage u on u.budget_id = b.id and u.period_start = ${periodStartOf(sql.ref('b.period'), starts)}
        where b.id = ${id}`.compile(this.db);
    });
    this.settleOne = statementTemplate(6, (id, actualUnits, reservedUnits, ...starts) => {
      return sql`update budget_usage set spent_units = spent_units + ${bigint(actualUnits)},
          reserved_units = case when reserved_units > ${bigint(reservedUnits)} then reserved_units - ${bigint(reservedUnits)} else 0 end
        where budget_id = ${id}
          and period_start = (select ${periodStartOf(sql.ref('budgets.period'), starts)} from budgets where budgets.id = ${id})
        returning ${COUNTER_COLUMNS}, (select limit_units from budgets where budgets.id = ${id}) as limit_units`.compile(this.db);
    });
  }

  /**
   * Creates a budget; its current period's counter starts at what the ledger already holds for
   * it (generations finished before the budget existed count). Throws BudgetConflictError when a
   * budget with the same scope, subject, model and period exists, TypeError/RangeError for bad input.
   */
  async create(input: BudgetInput, at: Date = this.now()): Promise<BudgetState> {
    const budget = validBudget(input, newBudgetId(), at);
    const row: BudgetsTable = {
      id: budget.id,
      scope: budget.scope,
      subject: budget.subject,
      model_id: budget.modelId,
      limit_units: budget.limitUnits,
      period: budget.period,
      created_at: at.getTime(),
      updated_at: at.getTime(),
    };
    const backfill = this.db
      .insertInto('budget_usage')
      .columns(['budget_id', 'period_start', 'spent_units', 'reserved_units'])
      .expression(
        this.db
          .selectFrom('generations')
          .select([
            sql<string>`cast(${budget.id} as text)`.as('budget_id'),
            sql<number>`cast(${periodStartMs(budget.period, at)} as bigint)`.as('period_start'),
            sql<number>`coalesce(sum(cost_units), 0)`.as('spent_units'),
            sql<number>`cast(0 as bigint)`.as('reserved_units'),
          ])
          .where((eb) => eb.and(ledgerConditions(eb, budget, at))),
      );
    try {
      // One transaction: the budget never exists without its counter.
      await this.changing(this.database.transaction([this.db.insertInto('budgets').values(row).compile(), backfill.compile()]));
    } catch (error) {
      if (UNIQUE_VIOLATIONS.has(String((error as { code?: unknown } | null)?.code))) {
        throw new BudgetConflictError(budget.scope, budget.subject, budget.modelId, budget.period);
      }
      throw error;
    }
    const created = await this.get(budget.id, at);
    if (!created) throw new BudgetVanishedError(budget.id); // deleted the moment it was made
    return created;
  }

  /** One budget with its counters for the period containing `at`; undefined when there is none. */
  async get(id: string, at: Date = this.now()): Promise<BudgetState | undefined> {
    const rows = await this.stateQuery(at).where('b.id', '=', id).execute();
    const row = rows[0];
    return row && this.withMemoryHolds(toState(row, at));
  }

  /** Every budget with its counters for the period containing `at`, oldest first. */
  async list(at: Date = this.now()): Promise<BudgetState[]> {
    const rows = await this.stateQuery(at).orderBy('b.created_at').orderBy('b.id').execute();
    return rows.map((row) => this.withMemoryHolds(toState(row, at)));
  }

  /** A budget's state with what this process holds on its counter in memory counted as reserved. */
  private withMemoryHolds(state: BudgetState): BudgetState {
    const held = this.memoryHolds?.heldOn(counterKey(state.id, state.periodStart?.getTime() ?? 0)) ?? 0;
    if (held === 0) return state;
    const { reservedUnits, remainingUnits } = roomOf(state.id, state.limitUnits, state.spentUnits, state.reservedUnits + held);
    return { ...state, reservedUnits, remainingUnits };
  }

  /**
   * The budgets that apply to a generation: the global ones, its team's and its key's, each
   * either for every model or for its model. Oldest first.
   */
  async applying(subject: BudgetSubject): Promise<Budget[]> {
    if (this.database.kind === 'sqlite') return (await (this.directory ?? this.readDirectory())).applying(subject);
    const query =
      subject.team === null
        ? this.applyingToCaller(subject.caller, subject.modelId)
        : this.applyingToTeamMember(subject.caller, subject.team, subject.modelId);
    const { rows } = await this.db.executeQuery<BudgetsTable>(query);
    return rows.map(toBudget);
  }

  /** A write to the budgets table: once it has settled (committed or not), the directory is read again. */
  private async changing<T>(write: Promise<T>): Promise<T> {
    try {
      return await write;
    } finally {
      this.directory = undefined;
      this.memoryHolds?.forgetCounters();
    }
  }

  private readDirectory(): Promise<BudgetDirectory> {
    const reading = this.db
      .selectFrom('budgets')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute()
      .then((rows) => new BudgetDirectory(rows.map(toBudget)));
    this.directory = reading;
    // A failed read is not kept: the next generation reads again (and fails closed meanwhile).
    reading.catch(() => {
      if (this.directory === reading) this.directory = undefined;
    });
    return reading;
  }

  private applyingQuery(caller: string, team: string | null, modelId: string) {
    return this.db
      .selectFrom('budgets')
      .selectAll()
      .where((eb) => {
        const scopes: Expression<SqlBool>[] = [eb('scope', '=', 'global'), eb.and([eb('scope', '=', 'key'), eb('subject', '=', caller)])];
        if (team !== null) scopes.push(eb.and([eb('scope', '=', 'team'), eb('subject', '=', team)]));
        return eb.and([eb.or(scopes), eb.or([eb('model_id', 'is', null), eb('model_id', '=', modelId)])]);
      })
      .orderBy('created_at')
      .orderBy('id');
  }

  /** Sets a budget's limit (effective for the next reservation); undefined when there is no such budget. */
  async update(id: string, limitUnits: number, at: Date = this.now()): Promise<BudgetState | undefined> {
    requireUnits('limitUnits', limitUnits);
    const changed = await this.changing(
      this.database.write(
        this.db.updateTable('budgets').set({ limit_units: limitUnits, updated_at: at.getTime() }).where('id', '=', id).compile(),
      ),
    );
    return changed === 0 ? undefined : this.get(id, at);
  }

  /** Removes a budget and its counters (it stops applying at once); false when there was none. */
  async delete(id: string): Promise<boolean> {
    const results = await this.changing(
      this.database.transaction([
        this.db.deleteFrom('budget_usage').where('budget_id', '=', id).compile(),
        this.db.deleteFrom('budgets').where('id', '=', id).compile(),
      ]),
    );
    return (results[1]?.changes ?? 0) > 0;
  }

  /**
   * The statements that hold `amountUnits` on each budget's counter for the period containing
   * `at`, to run in one transaction (LedgerDatabase.transaction), alone or with other statements
   * (the ledger row's). When a budget lacks room the transaction rolls back with a
   * TransactionConditionError that `failureOf` reads. No statements for an amount of 0 or no budgets.
   * The committed results' counters: `countersIn(results)`, unless `counters: false` (then the
   * statements return no rows, which costs less).
   */
  reserveStatements(
    budgetIds: readonly string[],
    amountUnits: number,
    at: Date,
    options: { readonly counters?: boolean } = {},
  ): TransactionStatement[] {
    requireUnits('amountUnits', amountUnits);
    const update = options.counters === false ? this.holdOne : this.reserveOne;
    return this.guardedHolds(sortedUnique(budgetIds), amountUnits, periodStartValues(at), update);
  }

  /** `reserveStatements` for sorted, unique ids and the period starts of `at`, each hold by `update`. */
  private guardedHolds(
    ids: readonly string[],
    amountUnits: number,
    starts: PeriodStartValues,
    update: BoundStatement<[id: string, amountUnits: number, ...starts: PeriodStartValues]>,
  ): TransactionStatement[] {
    if (amountUnits === 0 || ids.length === 0) return [];
    const statements = this.missingCounters(ids, starts);
    for (const id of ids) {
      statements.push({
        query: update(id, amountUnits, ...starts),
        expectChanges: 1,
        explain: this.explainReserve(id, ...starts),
        label: `${RESERVE_LABEL}${id}`,
      });
    }
    return statements;
  }

  /**
   * The statements that hold `amountUnits` on every budget (as `reserveStatements`) and run `row`
   * (the ledger's write of the held generations), committed together or not at all. On PostgreSQL,
   * once the counters are known to exist (`prepareCounters`), one statement, so one round trip: each
   * budget's conditional update is a data-modifying CTE that runs only once the one before it (in id
   * order, so rows are locked in id order) has held, and the statement divides by the last one's
   * count, so a missed hold fails it as a whole. `holdFailure` then says why. Elsewhere
   * `reserveStatements`, then `row`.
   */
  holdStatements(budgetIds: readonly string[], amountUnits: number, at: Date, row: CompiledQuery): TransactionStatement[] {
    requireUnits('amountUnits', amountUnits);
    const ids = sortedUnique(budgetIds);
    const starts = periodStartValues(at);
    if (this.database.kind !== 'postgres' || amountUnits === 0 || ids.length === 0 || this.unknownCounters(ids, starts).length > 0) {
      return [...this.guardedHolds(ids, amountUnits, starts, this.holdOne), row];
    }
    const holds = ids.map((id, index): [string, CompiledQuery] => {
      const hold = this.holdOne(id, amountUnits, ...starts);
      const afterPrevious = index === 0 ? '' : ` and exists (select 1 from hold_${index - 1})`;
      return [`hold_${index}`, CompiledQuery.raw(`${hold.sql}${afterPrevious} returning budget_id`, [...hold.parameters])];
    });
    return [withClauses([...holds, ['written', row]], `select 1 / (select count(*)::int from hold_${ids.length - 1}) as held`)];
  }

  /**
   * Why a transaction running `holdStatements` failed, when a budget was the reason: the first
   * budget (in id order) without room, or one deleted meanwhile; on PostgreSQL, where the statement
   * does not say which, read now (the extra round trips are the refusal's only), and `retry` when
   * every budget has room by then or the database broke a deadlock. Undefined for any other error.
   */
  async holdFailure(error: unknown, budgetIds: readonly string[], amountUnits: number, at: Date): Promise<HoldFailure | undefined> {
    const failure = failureOf(error);
    if (failure) return failure;
    const code = (error as { code?: unknown } | null)?.code;
    if (this.database.kind !== 'postgres' || (code !== HOLD_MISSED && code !== DEADLOCK)) return undefined;
    const starts = periodStartValues(at);
    if (code === HOLD_MISSED) {
      for (const id of sortedUnique(budgetIds)) {
        const [row] = (await this.db.executeQuery<Record<string, unknown>>(this.explainReserve(id, ...starts))).rows;
        if (!row) return { kind: 'vanished', budgetId: id };
        const refusal = refusalOf(id, row);
        if (refusal.remainingUnits < amountUnits) return { kind: 'refused', refusal };
      }
      // Room everywhere now: perhaps a counter was missing after all; the next try creates it first.
      for (const id of budgetIds) this.counted.delete(countedKey(id, starts));
    }
    return { kind: 'retry' };
  }

  /** Whether the ledger's holds are kept in this process's memory (`holdInMemory`) rather than on the counters. */
  get holdsInMemory(): boolean {
    return this.memoryHolds !== undefined;
  }

  /**
   * Where this process alone writes the database (`soleWriter`): holds each generation's amount on
   * every budget, in memory, or nothing when a budget lacks room for their sum (the first such in
   * id order names its room). A budget's room is its counter's committed spend (read once, then
   * followed through `observeSettled`) less what is held in memory; a budget deleted meanwhile is
   * left out. The caller then writes the rows, and releases each generation's hold (`releaseHold`)
   * right after its settlement's counters are observed, or at once when its row could not be written.
   */
  holdInMemory(
    holds: readonly { readonly generationId: string; readonly amountUnits: number }[],
    budgetIds: readonly string[],
    at: Date,
  ): MemoryHoldResult {
    const { memoryHolds } = this;
    const { readNow } = this.database;
    if (!memoryHolds || !readNow) throw new Error('holds are kept in memory only where this process alone writes the database');
    let totalUnits = 0;
    for (const { amountUnits } of holds) {
      requireUnits('amountUnits', amountUnits);
      totalUnits += amountUnits;
    }
    const generationIds = new Set(holds.map((hold) => hold.generationId));
    for (const id of generationIds) if (memoryHolds.has(id)) throw new Error(`generation ${id} already holds budget money`);
    if (generationIds.size !== holds.length) throw new Error('a generation can be held once');
    const ids = sortedUnique(budgetIds);
    if (totalUnits === 0) return { ok: true, budgetIds: ids }; // nothing to hold, as reserveStatements
    const starts = periodStartValues(at);
    const held: string[] = [];
    const keys: string[] = [];
    for (const id of ids) {
      let counter = memoryHolds.known(id);
      if (!counter || counter.periodStartMs !== periodStartIn(counter.period, starts)) {
        // Once per budget and period, and after a change to any budget: a read on the writing connection, at once.
        const [row] = readNow(this.explainReserve(id, ...starts));
        if (!row) continue; // deleted since it was looked up: it no longer applies
        const period = row.period as BudgetPeriod;
        counter = {
          period,
          limitUnits: Number(row.limit_units),
          periodStartMs: periodStartIn(period, starts),
          spentUnits: Number(row.spent_units),
          reservedUnits: Number(row.reserved_units),
        };
        memoryHolds.remember(id, counter);
      }
      const key = counterKey(id, counter.periodStartMs);
      const room = roomOf(id, counter.limitUnits, counter.spentUnits, counter.reservedUnits + memoryHolds.heldOn(key));
      if (room.remainingUnits < totalUnits) return { ok: false, refusal: room };
      held.push(id);
      keys.push(key);
    }
    for (const { generationId, amountUnits } of holds) memoryHolds.hold(generationId, keys, amountUnits);
    return { ok: true, budgetIds: held };
  }

  /** Whether a generation's hold is in memory, not yet released (see `holdInMemory`). */
  heldInMemory(generationId: string): boolean {
    return this.memoryHolds?.has(generationId) ?? false;
  }

  /** Gives back a generation's hold in memory; false when there was none (released already, or held on the counters). */
  releaseHold(generationId: string): boolean {
    return this.memoryHolds?.release(generationId) ?? false;
  }

  /**
   * Told the counters after every committed settlement (`countersIn` of its results), before the
   * holds it settles are released: keeps the counters that `holdInMemory` knows up to date.
   */
  observeSettled(counters: readonly BudgetCounter[]): void {
    this.memoryHolds?.observe(counters);
  }

  /**
   * The statements that settle a hold: each budget's counter for the period containing `at` (the
   * instant the hold was reserved for) gains `actualUnits` of spend and gives back
   * `reservedUnits` of hold, never going below zero. Not idempotent by itself: run them once per
   * generation, in the transaction that finishes its ledger row. No statements when both are 0.
   */
  settleStatements(budgetIds: readonly string[], reservedUnits: number, actualUnits: number, at: Date): TransactionStatement[] {
    requireUnits('reservedUnits', reservedUnits);
    requireUnits('actualUnits', actualUnits);
    const ids = sortedUnique(budgetIds);
    if ((reservedUnits === 0 && actualUnits === 0) || ids.length === 0) return [];
    const starts = periodStartValues(at);
    // The counter may be missing (nothing was held: a hold of 0, or a new period): spend still counts.
    const statements = this.missingCounters(ids, starts);
    for (const id of ids) statements.push(this.settleOne(id, actualUnits, reservedUnits, ...starts));
    return statements;
  }

  /**
   * Creates, in a write of its own, the counters that a reservation for `at` on these budgets will
   * update, unless this process already knows they exist: the reservation's transaction then only
   * updates them. Optional (the statements create a missing counter themselves) and idempotent.
   */
  async prepareCounters(budgetIds: readonly string[], at: Date): Promise<void> {
    const starts = periodStartValues(at);
    const missing = this.unknownCounters(sortedUnique(budgetIds), starts);
    if (missing.length === 0) return;
    await this.database.write(this.ensureCounters(missing, starts));
    if (starts[0] > this.countedDay) {
      this.counted.clear();
      this.countedDay = starts[0];
    }
    if (starts[0] === this.countedDay) for (const id of missing) this.counted.add(countedKey(id, starts));
  }

  /**
   * Holds `amountUnits` on every budget, or on none: `ok: false` names the first budget (in id
   * order) without room and what it had left. A budget deleted meanwhile is left out.
   */
  async reserve(budgetIds: readonly string[], amountUnits: number, at: Date): Promise<ReserveResult> {
    // Holds on the counters and holds in memory do not see each other: one repository keeps one kind.
    if (this.memoryHolds) throw new Error('this repository holds in memory (soleWriter): hold through LedgerRepository.startHeld');
    let ids = sortedUnique(budgetIds);
    for (;;) {
      const statements = this.reserveStatements(ids, amountUnits, at);
      if (statements.length === 0) return { ok: true, counters: [] };
      try {
        return { ok: true, counters: countersIn(await this.database.transaction(statements)) };
      } catch (error) {
        const failure = failureOf(error);
        if (!failure) throw error;
        if (failure.kind === 'refused') return { ok: false, refusal: failure.refusal };
        ids = ids.filter((id) => id !== failure.budgetId);
      }
    }
  }

  /** Settles a hold made by `reserve` (same budgets and `at`); resolves with the counters after it. */
  async settle(budgetIds: readonly string[], reservedUnits: number, actualUnits: number, at: Date): Promise<BudgetCounter[]> {
    const statements = this.settleStatements(budgetIds, reservedUnits, actualUnits, at);
    if (statements.length === 0) return [];
    const counters = countersIn(await this.database.transaction(statements));
    this.observeSettled(counters);
    return counters;
  }

  /**
   * The settled cost that the ledger holds for the budget in the period containing `at`: finished
   * generations (any status but in_progress) started in that period, of its key or team, and of
   * its model when it has one.
   */
  async spentFromLedger(budget: Budget, at: Date = this.now()): Promise<number> {
    const row = await this.db
      .selectFrom('generations')
      .select(sql<number>`cast(coalesce(sum(cost_units), 0) as bigint)`.as('spent'))
      .where((eb) => eb.and(ledgerConditions(eb, budget, at)))
      .executeTakeFirstOrThrow();
    return Number(row.spent);
  }

  /** Those of `ids` whose counters for the periods starting at `starts` are not known to exist (see `counted`). */
  private unknownCounters(ids: readonly string[], starts: PeriodStartValues): string[] {
    return starts[0] === this.countedDay ? ids.filter((id) => !this.counted.has(countedKey(id, starts))) : [...ids];
  }

  /** The statement creating the counters not known to exist, if any: first in a transaction that updates them. */
  private missingCounters(ids: readonly string[], starts: PeriodStartValues): TransactionStatement[] {
    const unknown = this.unknownCounters(ids, starts);
    return unknown.length === 0 ? [] : [this.ensureCounters(unknown, starts)];
  }

  /** Creates the missing counter rows (existing budgets only), in id order. */
  private ensureCounters(ids: readonly string[], starts: PeriodStartValues): CompiledQuery {
    let bound = this.ensureCountersFor.get(ids.length);
    if (!bound) {
      bound = statementTemplate(ids.length + 3, (...values: unknown[]) => {
        const starts = values.slice(ids.length) as PeriodStartValues;
        return sql`insert into budget_usage (budget_id, period_start, spent_units, reserved_units)
          select id, ${periodStartOf(sql.ref('period'), starts)}, 0, 0 from budgets where id in (${sql.join(values.slice(0, ids.length))}) order by id
          on conflict (budget_id, period_start) do nothing`.compile(this.db);
      });
      this.ensureCountersFor.set(ids.length, bound);
    }
    return bound(...ids, ...starts);
  }

  private stateQuery(at: Date) {
    const starts = periodStartValues(at);
    return this.db
      .selectFrom('budgets as b')
      .leftJoin('budget_usage as u', (join) =>
        join.onRef('u.budget_id', '=', 'b.id').on('u.period_start', '=', periodStartOf(sql.ref('b.period'), starts)),
      )
      .selectAll('b')
      .select([sql<number>`coalesce(u.spent_units, 0)`.as('spent_units'), sql<number>`coalesce(u.reserved_units, 0)`.as('reserved_units')]);
  }
}

/**
 * Why a transaction holding `reserveStatements` was rolled back, when a budget was the reason;
 * undefined for any other error (rethrow it).
 */
export function failureOf(error: unknown): ReservationFailure | undefined {
  if (!(error instanceof TransactionConditionError) || !error.label?.startsWith(RESERVE_LABEL)) return undefined;
  const budgetId = error.label.slice(RESERVE_LABEL.length);
  const row = error.explanation[0];
  return row ? { kind: 'refused', refusal: refusalOf(budgetId, row) } : { kind: 'vanished', budgetId };
}

/** A budget's room, from a row of `explainReserve`. */
function refusalOf(budgetId: string, row: Record<string, unknown>): BudgetRefusal {
  return roomOf(budgetId, Number(row.limit_units), Number(row.spent_units), Number(row.reserved_units));
}

function roomOf(budgetId: string, limitUnits: number, spentUnits: number, reservedUnits: number): BudgetRefusal {
  return { budgetId, limitUnits, spentUnits, reservedUnits, remainingUnits: Math.max(0, limitUnits - spentUnits - reservedUnits) };
}

/**
 * PostgreSQL: compiled statements as the data-modifying CTEs of one statement ending in `select`;
 * each one's $n parameters numbered after those of the statements before it. A data-modifying CTE
 * runs to completion whether or not the statement reads it.
 */
function withClauses(clauses: readonly (readonly [name: string, query: CompiledQuery])[], select: string): CompiledQuery {
  const parameters: unknown[] = [];
  const ctes = clauses.map(([name, query]) => {
    const offset = parameters.length;
    parameters.push(...query.parameters);
    return `${name} as (${query.sql.replace(/\$(\d+)/g, (_, index: string) => `$${Number(index) + offset}`)})`;
  });
  return CompiledQuery.raw(`with ${ctes.join(', ')} ${select}`, parameters);
}

/** The counters that a committed reservation's or settlement's statements returned (with others' results mixed in). */
export function countersIn(results: readonly StatementResult[]): BudgetCounter[] {
  const counters: BudgetCounter[] = [];
  for (const result of results) {
    for (const row of result.rows) {
      if (typeof row.budget_id !== 'string' || !('limit_units' in row) || !('reserved_units' in row)) continue;
      counters.push({
        budgetId: row.budget_id,
        periodStartMs: Number(row.period_start),
        spentUnits: Number(row.spent_units),
        reservedUnits: Number(row.reserved_units),
        limitUnits: Number(row.limit_units),
      });
    }
  }
  return counters;
}

// ---------------------------------------------------------------------------------------------

const COUNTER_COLUMNS = sql.raw('budget_id, period_start, spent_units, reserved_units');

/** Where the periods containing an instant start (ms): day, week, month; also a statement template's values. */
type PeriodStartValues = [day: number, week: number, month: number];

/** A counter's key in BudgetRepository's `counted`: its budget and the day (its start) of the instant it counts. */
const countedKey = (id: string, [day]: PeriodStartValues): string => `${id}@${day}`;

/** The start of a budget's current period among `starts` (0 for a total budget): its counter's `period_start`. */
function periodStartIn(period: BudgetPeriod, [day, week, month]: PeriodStartValues): number {
  return period === 'day' ? day : period === 'week' ? week : period === 'month' ? month : 0;
}

const DAY_MS = 86_400_000;
/** The latest day's period starts: a held generation needs them three times (counters, hold, settlement), all that day. Never mutated. */
let latestStarts: { readonly dayStartMs: number; readonly values: PeriodStartValues } | undefined;

function periodStartValues(at: Date): PeriodStartValues {
  const dayStartMs = Math.floor(at.getTime() / DAY_MS) * DAY_MS; // NaN for an invalid date: never cached, periodOf throws
  if (latestStarts?.dayStartMs === dayStartMs) return latestStarts.values;
  const values: PeriodStartValues = [periodStartMs('day', at), periodStartMs('week', at), periodStartMs('month', at)];
  latestStarts = { dayStartMs, values };
  return values;
}

/** A parameter typed BIGINT: PostgreSQL cannot infer a bare parameter's type inside CASE or SELECT lists. */
const bigint = (value: number): RawBuilder<number> => sql<number>`cast(${value} as bigint)`;

/** The counter key (budget_usage.period_start) of a budget whose `period` column is `period`. */
function periodStartOf(
  period: RawBuilder<unknown> | ReturnType<typeof sql.ref>,
  [day, week, month]: PeriodStartValues,
): RawBuilder<number> {
  return sql<number>`case ${period} when 'day' then ${bigint(day)} when 'week' then ${bigint(week)} when 'month' then ${bigint(month)} else ${bigint(0)} end`;
}

/** The ledger rows whose cost counts against `budget` in the period containing `at`. */
function ledgerConditions(eb: ExpressionBuilder<Database, 'generations'>, budget: Budget, at: Date): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [eb('status', '!=', IN_PROGRESS)];
  const { start, resetsAt } = periodOf(budget.period, at);
  if (start) conditions.push(eb('created_at', '>=', start.getTime()));
  if (resetsAt) conditions.push(eb('created_at', '<', resetsAt.getTime()));
  if (budget.scope === 'key' && budget.subject !== null) conditions.push(eb('caller', '=', budget.subject));
  if (budget.scope === 'team' && budget.subject !== null) conditions.push(eb('team', '=', budget.subject));
  if (budget.modelId !== null) conditions.push(eb('model_id', '=', budget.modelId));
  return conditions;
}

function validBudget(input: BudgetInput, id: string, at: Date): Budget {
  if (!BUDGET_SCOPES.includes(input.scope)) throw new TypeError(`unknown budget scope "${String(input.scope)}"`);
  if (!isBudgetPeriod(input.period)) throw new TypeError(`unknown budget period "${String(input.period)}"`);
  const subject = input.subject ?? null;
  if (input.scope === 'global' && subject !== null) throw new TypeError('a global budget has no subject');
  if (input.scope !== 'global' && (typeof subject !== 'string' || subject === '')) {
    throw new TypeError(`a ${input.scope} budget needs its ${input.scope}'s name as subject`);
  }
  const modelId = input.modelId ?? null;
  if (modelId !== null && (typeof modelId !== 'string' || modelId === '')) throw new TypeError('a model id must be a non-empty string');
  requireUnits('limitUnits', input.limitUnits);
  if (!Number.isFinite(at.getTime())) throw new RangeError('a budget needs a valid creation time');
  return { id, scope: input.scope, subject, modelId, limitUnits: input.limitUnits, period: input.period, createdAt: at, updatedAt: at };
}

function requireUnits(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${name} must be a non-negative integer number of cost units, got ${value}`);
}

function sortedUnique(ids: readonly string[]): string[] {
  return [...new Set(ids)].sort((left, right) => (left < right ? -1 : left > right ? 1 : 0));
}

function newBudgetId(): string {
  let random = '';
  for (const byte of randomBytes(20)) random += ID_ALPHABET[byte % 32];
  return `bud_${random}`;
}

function toBudget(row: BudgetsTable): Budget {
  return {
    id: row.id,
    scope: row.scope as BudgetScope,
    subject: row.subject,
    modelId: row.model_id,
    limitUnits: Number(row.limit_units),
    period: row.period as BudgetPeriod,
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  };
}

function toState(row: BudgetsTable & { spent_units: number; reserved_units: number }, at: Date): BudgetState {
  const budget = toBudget(row);
  const spentUnits = Number(row.spent_units);
  const reservedUnits = Number(row.reserved_units);
  const { start, resetsAt } = periodOf(budget.period, at);
  return {
    ...budget,
    spentUnits,
    reservedUnits,
    remainingUnits: Math.max(0, budget.limitUnits - spentUnits - reservedUnits),
    periodStart: start,
    resetsAt,
  };
}
