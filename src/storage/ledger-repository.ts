import {
  type CompiledQuery,
  type Expression,
  type ExpressionBuilder,
  type Insertable,
  type Kysely,
  type RawBuilder,
  type Selectable,
  type SqlBool,
  sql,
} from 'kysely';
import { costUnitsToUsd, usdToCostUnits } from './cost-units';
import type { LedgerDatabase, TransactionStatement } from './database';
import { type BatchOutcome, GroupCommitWriter } from './group-commit-writer';
import { type BoundStatement, statementTemplate } from './statement-template';
import { decodeCursor, pageOf } from './ledger-cursor';
import {
  GENERATION_STATUSES,
  LEDGER_SOURCES,
  type Generation,
  type GenerationAttempt,
  type GenerationOutcome,
  type GenerationPage,
  type GenerationStart,
  type GenerationStatus,
  type LedgerFilter,
  type LedgerSource,
  type PageRequest,
  type UsageGroupBy,
  type UsageReport,
  type UsageRow,
  type UsageTotals,
} from './ledger-types';
import type { Database, GenerationsTable } from './schema';
import { BudgetRefusedError } from './budget-errors';
import { type BudgetRepository, countersIn } from './budget-repository';
import type { BudgetCounter } from './budget-types';
import { type StatementResult, TransactionConditionError } from './database';
import { GenerationNotStartedError } from './storage-errors';
import { queryUsageSeries, type UsageSeries, type UsageSeriesQuery } from './usage-series';

export interface LedgerRepositorySettings {
  /** False (LEDGER_CONTENT=false): neither prompt nor text is stored. */
  readonly recordContent: boolean;
  /** Budget holds are reserved and settled in the transactions that write the rows; without it, `startHeld` refuses. */
  readonly budgets?: BudgetRepository;
  /** Told of every committed settlement: the counters after it and the spend it added (budget alerts). */
  readonly onBudgetSettled?: (counters: readonly BudgetCounter[], addedUnits: number) => void;
  /** The clock for `finished_at`; injected by tests. */
  readonly now?: () => Date;
  /** The most rows one group commit writes; more wait for the next turn of the event loop. */
  readonly maxBatchSize?: number;
}

/** The largest page `list` serves. */
export const MAX_PAGE_SIZE = 1000;
/** The error recorded for generations that were in flight when the process stopped. */
export const INTERRUPTED_ERROR = 'interrupted';

const IN_PROGRESS = 'in_progress';
const DAY_MS = 86_400_000;
// One statement per batch. Measured with scripts/bench-ledger.ts: SQLite commits a 25-row batch on
// the main thread in well under 1 ms (p99.9 0.8 ms flat out), and several thousand generations a second.
const DEFAULT_MAX_BATCH_SIZE = 25;
const MAX_HOLD_RETRIES = 3;

type GenerationRow = Insertable<GenerationsTable>;
/**
 * What the group commit writes: rows (a start or finish without a hold on the counters; the rows of one write are in
 * the same statement, so committed together), or a held start's or finish's transaction.
 */
type LedgerWrite = { readonly rows: readonly GenerationRow[] } | { readonly statements: readonly TransactionStatement[] };

/** What finishing a row sets (the rest was written when it started). */
const FINISHED_COLUMNS = [
  'provider',
  'upstream_model',
  'status',
  'error',
  'finish_reason',
  'text',
  'input_tokens',
  'output_tokens',
  'cost_units',
  'latency_ms',
  'attempts',
  'finished_at',
] as const satisfies readonly (keyof GenerationRow)[];

/**
 * The ledger of generations: every generation is started (an `in_progress` row) before its first
 * upstream call and finished when it ends. Writes go through a group commit and resolve only once
 * committed. Reads see finished rows only.
 */
export class LedgerRepository {
  private readonly database: LedgerDatabase;
  private readonly db: Kysely<Database>;
  /** Usage reports scan ranges: off the event loop on SQLite (LedgerDatabase.reports). */
  private readonly reports: Kysely<Database>;
  private readonly now: () => Date;
  private readonly writer: GroupCommitWriter<LedgerWrite, StatementResult[] | undefined>;
  /** Rows started here and not yet finished: `finish` writes the whole row, so a batch is one upsert. */
  private readonly inFlight = new Map<string, GenerationRow>();
  /** The upsert by batch size, with the column order its values are bound in. */
  private readonly upsertFor = new Map<
    number,
    { readonly columns: readonly (keyof GenerationRow)[]; readonly bind: BoundStatement<unknown[]> }
  >();
  /** Finishes a row holding budget money, in the transaction that settles the hold: compiled once. */
  private readonly finishHeld: BoundStatement<[row: GenerationRow]>;

  constructor(
    database: LedgerDatabase,
    private readonly settings: LedgerRepositorySettings,
  ) {
    this.database = database;
    this.db = database.db;
    this.reports = database.reports;
    this.now = settings.now ?? (() => new Date());
    const finishQuery = statementTemplate(FINISHED_COLUMNS.length + 1, (...values: unknown[]) =>
      this.db
        .updateTable('generations')
        .set(Object.fromEntries(FINISHED_COLUMNS.map((column, index) => [column, values[index]])))
        .where('id', '=', values[FINISHED_COLUMNS.length] as string)
        .where(sql.ref('status'), '=', sql.lit(IN_PROGRESS))
        .compile(),
    );
    this.finishHeld = (row) => finishQuery(...FINISHED_COLUMNS.map((column) => row[column]), row.id);
    this.writer = new GroupCommitWriter({
      commit: (batch) => this.commit(batch),
      maxBatchSize: settings.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
      // With other generations in flight their writes are due soon: share a commit with them.
      mayCommitAlone: () => this.inFlight.size <= 1,
    });
  }

  /** Records a generation as in progress; resolves once the row is committed. */
  start(generation: GenerationStart): Promise<void> {
    let row: GenerationRow;
    try {
      row = this.startRow(generation);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.inFlight.has(row.id)) return Promise.reject(new Error(`generation ${row.id} was already started`));
    this.inFlight.set(row.id, row);
    return this.writer.write({ rows: [row] }).then(
      () => undefined,
      (error: unknown) => {
        if (this.inFlight.get(row.id) === row) this.inFlight.delete(row.id);
        throw error;
      },
    );
  }

  /**
   * Records generations as in progress while holding each one's worst case (`amountsUnits`, in the
   * same order) on every budget in `budgetIds`, in one transaction: every row is started and every
   * budget holds the sum, or nothing is written (BudgetRefusedError names the budget without room).
   * A budget deleted meanwhile no longer applies. Resolves once committed.
   */
  async startHeld(
    generations: readonly GenerationStart[],
    hold: { readonly budgetIds: readonly string[]; readonly amountsUnits: readonly number[] },
  ): Promise<void> {
    const { budgets } = this.settings;
    if (!budgets) throw new Error('this ledger was opened without budgets');
    if (hold.amountsUnits.length !== generations.length) throw new RangeError('one hold amount per generation');
    const rows = generations.map((generation) => this.startRow(generation));
    for (const row of rows) if (this.inFlight.has(row.id)) throw new Error(`generation ${row.id} was already started`);
    const at = new Date(rows[0]!.created_at);
    let budgetIds = [...new Set(hold.budgetIds)].sort();
    // Once per budget and day: the hold's (and the settlement's) transaction then only updates the counters.
    await budgets.prepareCounters(budgetIds, at);
    if (budgets.holdsInMemory) return this.startHeldInMemory(rows, hold.amountsUnits, budgetIds, at, budgets);
    const total = hold.amountsUnits.reduce((sum, amount) => sum + amount, 0);
    // A retry (PostgreSQL: a deadlock broken, or room found again) is rare; a few are enough.
    for (let retries = 0; ; ) {
      const held = rows.map((row, index) => ({ ...row, reserved_units: hold.amountsUnits[index]!, budget_ids: JSON.stringify(budgetIds) }));
      try {
        // Through the group commit: under load, held starts share commits (a savepoint each) with other writes.
        await this.writer.write({ statements: budgets.holdStatements(budgetIds, total, at, this.upsertQuery(held)) });
        for (const row of held) this.inFlight.set(row.id, row);
        return;
      } catch (error) {
        const failure = await budgets.holdFailure(error, budgetIds, total, at);
        if (!failure || (failure.kind === 'retry' && ++retries > MAX_HOLD_RETRIES)) throw error;
        if (failure.kind === 'refused') throw new BudgetRefusedError(failure.refusal);
        if (failure.kind === 'vanished') budgetIds = budgetIds.filter((id) => id !== failure.budgetId);
      }
    }
  }

  /**
   * `startHeld` where this process alone writes the database: the holds are taken in memory at once
   * (BudgetRepository.holdInMemory) and the rows are one ordinary write, sharing the group commit's
   * upsert with every other row's (so all of them are started, or none). Rows that could not be
   * written give their holds back.
   */
  private async startHeldInMemory(
    rows: readonly GenerationRow[],
    amountsUnits: readonly number[],
    budgetIds: readonly string[],
    at: Date,
    budgets: BudgetRepository,
  ): Promise<void> {
    const holds = rows.map((row, index) => ({ generationId: row.id, amountUnits: amountsUnits[index]! }));
    const held = budgets.holdInMemory(holds, budgetIds, at);
    if (!held.ok) throw new BudgetRefusedError(held.refusal);
    const heldIds = JSON.stringify(held.budgetIds);
    const heldRows = rows.map((row, index) => ({ ...row, reserved_units: amountsUnits[index]!, budget_ids: heldIds }));
    for (const row of heldRows) this.inFlight.set(row.id, row);
    try {
      await this.writer.write({ rows: heldRows });
    } catch (error) {
      for (const row of heldRows) {
        if (this.inFlight.get(row.id) === row) this.inFlight.delete(row.id);
        budgets.releaseHold(row.id);
      }
      throw error;
    }
  }

  /**
   * Records how a started generation ended; resolves once the row is committed. A generation that
   * holds budget money settles it in the same transaction: its actual cost becomes spend, the rest
   * of the hold is released (exactly once: the row is finished once).
   */
  finish(id: string, outcome: GenerationOutcome): Promise<void> {
    const started = this.inFlight.get(id);
    if (!started) return Promise.reject(new GenerationNotStartedError(id));
    let row: GenerationRow;
    try {
      row = this.finishedRow(started, outcome);
    } catch (error) {
      return Promise.reject(error);
    }
    this.inFlight.delete(id);
    if (!started.budget_ids || !this.settings.budgets) return this.writer.write({ rows: [row] }).then(() => undefined);
    // Only a row still in progress is finished and settled: one that the sweep closed (its hold
    // already settled in full) is never settled twice; the transaction rolls back instead.
    const finish = this.finishHeld(row);
    return this.settleHeld(
      { id, budgetIds: started.budget_ids, reservedUnits: Number(started.reserved_units ?? 0), createdAtMs: started.created_at },
      Number(row.cost_units),
      async (settle) => (await this.writer.write({ statements: [{ query: finish, expectChanges: 1, label: 'finish' }, ...settle] })) ?? [],
    );
  }

  /**
   * Settles a held row in `run`'s transaction (which finishes or closes the row, guarded on its
   * still being in progress): its budgets gain `actualUnits` of spend and give back its hold. A hold
   * in this process's memory is not on the counters: it is released once the settlement has
   * committed and its counters are known. The counters then go to the listener (budget alerts).
   */
  private async settleHeld(
    row: { readonly id: string; readonly budgetIds: string; readonly reservedUnits: number; readonly createdAtMs: number },
    actualUnits: number,
    run: (settle: readonly TransactionStatement[]) => Promise<readonly StatementResult[]>,
  ): Promise<void> {
    const { budgets, onBudgetSettled } = this.settings;
    const inMemory = budgets?.heldInMemory(row.id) ?? false;
    const settle =
      budgets?.settleStatements(
        JSON.parse(row.budgetIds) as string[],
        inMemory ? 0 : row.reservedUnits,
        actualUnits,
        new Date(row.createdAtMs),
      ) ?? [];
    const counters = countersIn(await run(settle));
    budgets?.observeSettled(counters); // before the hold it settles is released
    if (inMemory) budgets?.releaseHold(row.id);
    if (counters.length === 0 || !onBudgetSettled) return;
    try {
      onBudgetSettled(counters, actualUnits);
    } catch {
      // A listener (alerts) never fails the generation whose row is already committed.
    }
  }

  /**
   * At start-up: generations still in progress (the process stopped while they ran) become
   * `cancelled` with error `interrupted`. Returns how many. With a shared PostgreSQL, pass the
   * oldest start a live replica could still finish; a row closed too early is set right by its `finish`.
   * `atStartup`: run on the reading connection (nothing is served yet).
   */
  async closeInterrupted(startedBefore: Date = this.now(), options: { readonly atStartup?: boolean } = {}): Promise<number> {
    const cutoff = epochMs(startedBefore);
    const closedAt = epochMs(this.now());
    // Rows holding budget money: each is closed at its full hold (unknown usage is never refunded),
    // settled on its budgets in the transaction that closes it.
    let closed = 0;
    const held = await this.db
      .selectFrom('generations')
      .select(['id', 'budget_ids', 'reserved_units', 'created_at'])
      .where(sql.ref('status'), '=', sql.lit(IN_PROGRESS))
      .where('created_at', '<', cutoff)
      .where('budget_ids', 'is not', null)
      .execute();
    for (const row of held) {
      const close = this.db
        .updateTable('generations')
        .set({ status: 'cancelled', error: INTERRUPTED_ERROR, latency_ms: 0, finished_at: closedAt, cost_units: sql`reserved_units` })
        .where('id', '=', row.id)
        .where(sql.ref('status'), '=', sql.lit(IN_PROGRESS))
        .compile();
      const reserved = Number(row.reserved_units);
      try {
        // Guarded: a replica (or this process's own finish) that finished the row meanwhile settled it itself.
        await this.settleHeld(
          { id: row.id, budgetIds: row.budget_ids!, reservedUnits: reserved, createdAtMs: Number(row.created_at) },
          reserved,
          (settle) => this.database.transaction([{ query: close, expectChanges: 1 }, ...settle]),
        );
        closed += 1;
      } catch (error) {
        if (!(error instanceof TransactionConditionError)) throw error;
      }
    }
    // The sweep runs every few seconds: an idle ledger should not write (or wake its threads) for nothing.
    const open = await this.db
      .selectFrom('generations')
      .select('id')
      .where(sql.ref('status'), '=', sql.lit(IN_PROGRESS))
      .where('created_at', '<', cutoff)
      .where('budget_ids', 'is', null)
      .limit(1)
      .execute();
    if (open.length === 0) return closed;
    const close = this.db
      .updateTable('generations')
      .set({ status: 'cancelled', error: INTERRUPTED_ERROR, latency_ms: 0, finished_at: closedAt })
      // A literal, so SQLite can use the partial index of open rows (it cannot prove `status = ?` matches it).
      .where(sql.ref('status'), '=', sql.lit(IN_PROGRESS))
      .where('created_at', '<', cutoff)
      .where('budget_ids', 'is', null)
      .compile();
    return closed + (await (options.atStartup ? this.database.writeAtStartup(close) : this.database.write(close)));
  }

  /** Finished generations, newest first, one page at a time. Throws InvalidCursorError for a cursor it did not issue. */
  async list(filter: LedgerFilter, page: PageRequest): Promise<GenerationPage> {
    if (!Number.isSafeInteger(page.limit) || page.limit < 1 || page.limit > MAX_PAGE_SIZE) {
      throw new RangeError(`a page holds 1 to ${MAX_PAGE_SIZE} generations, not ${page.limit}`);
    }
    const after = page.cursor ? decodeCursor(page.cursor) : undefined;
    const rows = await this.db
      .selectFrom('generations')
      .selectAll()
      .where((eb) => {
        const conditions = filterConditions(eb, filter);
        if (after) conditions.push(eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(after.createdAtMs, after.id)));
        return eb.and(conditions);
      })
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit + 1)
      .execute();
    const { items: generations, nextCursor } = pageOf(rows.map(toGeneration), page.limit);
    return { generations, nextCursor };
  }

  /** One finished generation; undefined when missing or still in progress. */
  async get(id: string): Promise<Generation | undefined> {
    const row = await this.db
      .selectFrom('generations')
      .selectAll()
      .where('id', '=', id)
      .where('status', '!=', IN_PROGRESS)
      .executeTakeFirst();
    return row && toGeneration(row);
  }

  /** Requests, tokens and cost of the finished generations that `filter` selects, grouped. */
  async usage(filter: LedgerFilter, groupBy: UsageGroupBy): Promise<UsageReport> {
    const group = GROUP_EXPRESSIONS[groupBy];
    const sums = await this.reports
      .selectFrom('generations')
      .select([
        group.as('group_key'),
        sql<number>`count(*)`.as('requests'),
        sql<number>`sum(case when status = 'succeeded' then 1 else 0 end)`.as('succeeded'),
        sql<number>`sum(case when status = 'failed' then 1 else 0 end)`.as('failed'),
        sql<number>`sum(input_tokens)`.as('input_tokens'),
        sql<number>`sum(output_tokens)`.as('output_tokens'),
        // As text: an exact integer of any size in both stores.
        sql<string>`cast(sum(cost_units) as text)`.as('cost_units'),
      ])
      .where((eb) => eb.and(filterConditions(eb, filter)))
      .groupBy(group)
      .execute();
    const rows: UsageRow[] = sums
      .map((sum) => ({
        group: groupBy === 'day' ? utcDay(Number(sum.group_key)) : String(sum.group_key),
        ...totalsOf({
          requests: Number(sum.requests),
          succeeded: Number(sum.succeeded),
          failed: Number(sum.failed),
          inputTokens: Number(sum.input_tokens),
          outputTokens: Number(sum.output_tokens),
          costUnits: BigInt(sum.cost_units),
        }),
      }))
      // Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order disagree on text.
      .sort((left, right) => (left.group < right.group ? -1 : left.group > right.group ? 1 : 0));
    const total = (pick: (row: UsageRow) => number): number => rows.reduce((sum, row) => sum + pick(row), 0);
    const totals = totalsOf({
      requests: total((row) => row.requests),
      succeeded: total((row) => row.succeeded),
      failed: total((row) => row.failed),
      inputTokens: total((row) => row.inputTokens),
      outputTokens: total((row) => row.outputTokens),
      costUnits: rows.reduce((sum, row) => sum + row.costUnits, 0n),
    });
    return { groupBy, since: filter.since ?? null, until: filter.until ?? null, rows, totals };
  }

  /** Requests, failures, tokens, cost and latency percentiles per time bucket and group (src/storage/usage-series.ts). */
  usageSeries(query: UsageSeriesQuery): Promise<UsageSeries> {
    return queryUsageSeries(this.reports, query);
  }

  /** Resolves once every write made so far has settled. */
  drained(): Promise<void> {
    return this.writer.drained();
  }

  /** Refuses further writes and waits for the queued ones; the database stays open (its owner closes it). */
  close(): Promise<void> {
    return this.writer.close();
  }

  /**
   * One batch of the group commit. Rows: one statement, a row's latest state winning, whether it is
   * a start, a finish or both. Transactions (a held start, a held finish): each its own, so that a
   * refused hold fails alone, in the same commit as the rows (`LedgerDatabase.transactions`).
   */
  private async commit(batch: readonly LedgerWrite[]): Promise<BatchOutcome<StatementResult[] | undefined>> {
    const rows = batch.flatMap((write) => ('rows' in write ? write.rows : []));
    const latest = [...new Map(rows.map((row) => [row.id, row])).values()];
    const upsert = latest.length > 0 ? this.upsertQuery(latest) : undefined;
    const transactions = batch.flatMap((write) => ('statements' in write ? [write.statements] : []));
    const [first] = transactions;
    if (!first) {
      if (upsert) await this.database.write(upsert);
      return undefined;
    }
    if (!upsert && transactions.length === 1) return [{ status: 'fulfilled', value: await this.database.transaction(first) }];
    const settled = await this.database.transactions(upsert ? [[upsert], ...transactions] : transactions);
    let next = upsert ? 1 : 0;
    return batch.map((write) => ('rows' in write ? settled[0]! : settled[next++]!));
  }

  /**
   * Compiled once per batch size (statement-template.ts) and bound to each batch's values: compiling
   * a 100-row upsert costs a few hundred microseconds of the event loop, so this keeps a commit's share
   * of the main thread to microseconds.
   */
  private upsertQuery(rows: readonly GenerationRow[]): CompiledQuery {
    let upsert = this.upsertFor.get(rows.length);
    if (!upsert) {
      // Every row has the same keys in the same order (startRow builds them; finishedRow overrides values only).
      const columns = Object.keys(rows[0] ?? {}) as (keyof GenerationRow)[];
      const bind = statementTemplate(rows.length * columns.length, (...values: unknown[]) =>
        this.db
          .insertInto('generations')
          .values(
            // Each row's placeholders, by column.
            rows.map(
              (_, row) =>
                Object.fromEntries(columns.map((column, index) => [column, values[row * columns.length + index]])) as GenerationRow,
            ),
          )
          .onConflict((conflict) =>
            conflict
              .column('id')
              .doUpdateSet((eb) => Object.fromEntries(FINISHED_COLUMNS.map((column) => [column, eb.ref(`excluded.${column}`)]))),
          )
          .compile(),
      );
      upsert = { columns, bind };
      this.upsertFor.set(rows.length, upsert);
    }
    return upsert.bind(...parametersOf(rows, upsert.columns));
  }

  private startRow(generation: GenerationStart): GenerationRow {
    for (const field of ['id', 'requestId', 'caller', 'modelId', 'provider', 'upstreamModel'] as const) {
      if (typeof generation[field] !== 'string' || generation[field] === '')
        throw new TypeError(`a generation's ${field} must be a non-empty string`);
    }
    if (!LEDGER_SOURCES.includes(generation.source)) throw new TypeError(`unknown generation source "${generation.source}"`);
    const { maxTokens, temperature, topP } = generation.parameters;
    requireCount('maxTokens', maxTokens);
    if (!Number.isFinite(temperature) || !Number.isFinite(topP)) throw new RangeError('temperature and top_p must be finite numbers');
    if (generation.promptRef) requireCount('promptRef.version', generation.promptRef.version);
    return {
      id: generation.id,
      request_id: generation.requestId,
      caller: generation.caller,
      team: generation.team,
      source: generation.source,
      model_id: generation.modelId,
      provider: generation.provider,
      upstream_model: generation.upstreamModel,
      status: IN_PROGRESS,
      error: null,
      finish_reason: null,
      prompt: this.settings.recordContent ? generation.prompt : null,
      text: null,
      prompt_name: generation.promptRef?.name ?? null,
      prompt_version: generation.promptRef?.version ?? null,
      evaluation_id: generation.evaluationId,
      max_tokens: maxTokens,
      temperature,
      top_p: topP,
      input_tokens: 0,
      output_tokens: 0,
      cost_units: 0,
      latency_ms: null,
      attempts: '[]',
      created_at: epochMs(generation.createdAt),
      finished_at: null,
      reserved_units: 0,
      budget_ids: null,
    };
  }

  private finishedRow(started: GenerationRow, outcome: GenerationOutcome): GenerationRow {
    if (!GENERATION_STATUSES.includes(outcome.status)) throw new TypeError(`unknown generation status "${outcome.status}"`);
    requireCount('inputTokens', outcome.inputTokens);
    requireCount('outputTokens', outcome.outputTokens);
    requireCount('latencyMs', outcome.latencyMs);
    return {
      ...started,
      provider: outcome.provider ?? started.provider,
      upstream_model: outcome.upstreamModel ?? started.upstream_model,
      status: outcome.status,
      error: outcome.error,
      finish_reason: outcome.finishReason,
      text: this.settings.recordContent ? outcome.text : null,
      input_tokens: outcome.inputTokens,
      output_tokens: outcome.outputTokens,
      cost_units: usdToCostUnits(outcome.costUsd),
      latency_ms: outcome.latencyMs,
      attempts: JSON.stringify(outcome.attempts),
      finished_at: epochMs(this.now()),
    };
  }
}

// Raw SQL without parameters: PostgreSQL matches the grouped expression to the selected one by its text.
const GROUP_EXPRESSIONS: Readonly<Record<UsageGroupBy, RawBuilder<string | number>>> = {
  model: sql<string>`model_id`,
  caller: sql<string>`caller`,
  team: sql<string>`coalesce(team, '')`,
  day: sql<number>`(created_at / ${sql.lit(DAY_MS)})`,
};

function filterConditions(eb: ExpressionBuilder<Database, 'generations'>, filter: LedgerFilter): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [filter.status ? eb('status', '=', filter.status) : eb('status', '!=', IN_PROGRESS)];
  if (filter.caller !== undefined) conditions.push(eb('caller', '=', filter.caller));
  if (filter.team !== undefined) conditions.push(eb('team', '=', filter.team));
  if (filter.modelId !== undefined) conditions.push(eb('model_id', '=', filter.modelId));
  if (filter.source !== undefined) conditions.push(eb('source', '=', filter.source));
  if (filter.since !== undefined) conditions.push(eb('created_at', '>=', epochMs(filter.since)));
  if (filter.until !== undefined) conditions.push(eb('created_at', '<', epochMs(filter.until)));
  return conditions;
}

function totalsOf(counts: Omit<UsageTotals, 'totalTokens' | 'costUsd'>): UsageTotals {
  return { ...counts, totalTokens: counts.inputTokens + counts.outputTokens, costUsd: costUnitsToUsd(counts.costUnits) };
}

function toGeneration(row: Selectable<GenerationsTable>): Generation {
  return {
    id: row.id,
    requestId: row.request_id,
    caller: row.caller,
    team: row.team,
    source: row.source as LedgerSource,
    modelId: row.model_id,
    provider: row.provider,
    upstreamModel: row.upstream_model,
    status: row.status as GenerationStatus,
    error: row.error,
    finishReason: row.finish_reason,
    prompt: row.prompt,
    text: row.text,
    promptRef: row.prompt_name === null || row.prompt_version === null ? null : { name: row.prompt_name, version: row.prompt_version },
    evaluationId: row.evaluation_id,
    parameters: { maxTokens: row.max_tokens, temperature: row.temperature, topP: row.top_p },
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    costUsd: costUnitsToUsd(row.cost_units),
    costUnits: row.cost_units,
    latencyMs: row.latency_ms ?? 0,
    attempts: JSON.parse(row.attempts) as GenerationAttempt[],
    createdAt: new Date(row.created_at),
    finishedAt: new Date(row.finished_at ?? row.created_at),
  };
}

function epochMs(time: Date): number {
  const ms = time.getTime();
  if (!Number.isSafeInteger(ms)) throw new RangeError('an invalid date cannot be recorded or compared');
  return ms;
}

function utcDay(dayNumber: number): string {
  return new Date(dayNumber * DAY_MS).toISOString().slice(0, 10);
}

function requireCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
}

/** Each row's values in column order, one after another: a plain loop (flatMap copies each through V8's runtime). */
function parametersOf(rows: readonly GenerationRow[], columns: readonly (keyof GenerationRow)[]): unknown[] {
  const parameters: unknown[] = [];
  for (const row of rows) for (const column of columns) parameters.push(row[column]);
  return parameters;
}
