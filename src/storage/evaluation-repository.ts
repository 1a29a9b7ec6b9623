import { type Kysely, type Selectable, sql } from 'kysely';
import { costUnitsToUsd } from './cost-units';
import { type LedgerDatabase, TransactionConditionError } from './database';
import {
  type CellKey,
  type CellScore,
  type Evaluation,
  type EvaluationResult,
  type EvaluationStatus,
  type FinishedCell,
  type NewEvaluation,
  TooManyScorersError,
  UNFINISHED_STATUSES,
  type VariantSummary,
} from './evaluation-types';
import { newEvaluationId } from './generation-id';
import { decodeCursor, pageOf } from './ledger-cursor';
import { MAX_SCORERS } from './migrations/0006_evaluations';
import type { Database, EvaluationCellsTable, EvaluationsTable } from './schema';
import { InvalidCursorError } from './storage-errors';

type ScoreColumn = `score_${0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}`;
const scoreColumn = (index: number): ScoreColumn => `score_${index}` as ScoreColumn;

/** The statuses a run ends in, and the ones it can be moved out of. */
type EndStatus = Extract<EvaluationStatus, 'succeeded' | 'failed' | 'cancelled'>;

/**
 * Evaluation runs and their cells. Every change that several processes may race on is one
 * conditional statement or one transaction: a cell is recorded once (its key is the primary key)
 * and only while its run is running, together with the run's counters; a run ends once.
 */
export class EvaluationRepository {
  private readonly db: Kysely<Database>;

  constructor(
    private readonly database: LedgerDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.db = database.db;
  }

  async create(run: NewEvaluation): Promise<Evaluation> {
    if (run.scorers.length > MAX_SCORERS) throw new TooManyScorersError(`a run has at most ${MAX_SCORERS} scorers`);
    const createdAt = this.now();
    const row: Selectable<EvaluationsTable> = {
      id: newEvaluationId(createdAt),
      name: run.name,
      status: 'queued',
      dataset_id: run.datasetId,
      prompts: JSON.stringify(run.prompts),
      model_ids: JSON.stringify(run.modelIds),
      scorers: JSON.stringify(run.scorers),
      parameters: JSON.stringify(run.parameters),
      caller: run.owner.name,
      team: run.owner.team,
      role: run.owner.role,
      case_count: run.caseCount,
      total: run.caseCount * run.prompts.length * run.modelIds.length,
      completed: 0,
      failed: 0,
      error: null,
      variants: null,
      lease_owner: run.lease?.owner ?? null,
      lease_until: run.lease ? createdAt.getTime() + run.lease.leaseMs : null,
      created_at: createdAt.getTime(),
      started_at: null,
      finished_at: null,
    };
    await this.database.write(this.db.insertInto('evaluations').values(row).compile());
    return toEvaluation(row);
  }

  async get(id: string): Promise<Evaluation | undefined> {
    const row = await this.db.selectFrom('evaluations').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toEvaluation(row) : undefined;
  }

  /** Runs, newest first; with `owner`, only that caller's. Throws InvalidCursorError for a cursor it did not issue. */
  async list(
    filter: { readonly owner?: string },
    page: { readonly limit: number; readonly cursor?: string | null },
  ): Promise<{ readonly evaluations: Evaluation[]; readonly nextCursor: string | null }> {
    const after = page.cursor ? decodeCursor(page.cursor) : undefined;
    let query = this.db.selectFrom('evaluations').selectAll();
    if (filter.owner !== undefined) query = query.where('caller', '=', filter.owner);
    if (after) query = query.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(after.createdAtMs, after.id)));
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit + 1)
      .execute();
    const { items, nextCursor } = pageOf(rows.map(toEvaluation), page.limit);
    return { evaluations: items, nextCursor };
  }

  /** The statuses of these runs (a missing run is left out). */
  async statuses(ids: readonly string[]): Promise<Map<string, EvaluationStatus>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('evaluations')
      .select(['id', 'status'])
      .where('id', 'in', [...ids])
      .execute();
    return new Map(rows.map((row) => [row.id, row.status as EvaluationStatus]));
  }

  /** Moves a queued run to running (its first cell starts); false when it is not queued. */
  async markRunning(id: string): Promise<boolean> {
    const changed = await this.database.write(
      this.db
        .updateTable('evaluations')
        .set({ status: 'running', started_at: this.now().getTime() })
        .where('id', '=', id)
        .where('status', '=', 'queued')
        .compile(),
    );
    return changed === 1;
  }

  /**
   * Ends a queued or running run, once: the first end wins (a cancel racing the last cell, two
   * replicas finishing together). Its variants are frozen with it. False when it had already ended.
   */
  async end(id: string, status: EndStatus, error: string | null, variants: readonly VariantSummary[]): Promise<boolean> {
    const now = this.now().getTime();
    const changed = await this.database.write(
      this.db
        .updateTable('evaluations')
        .set({
          status,
          error,
          variants: JSON.stringify(variants),
          finished_at: now,
          started_at: sql<number>`coalesce(started_at, ${now})`,
          lease_owner: null,
          lease_until: null,
        })
        .where('id', '=', id)
        .where('status', 'in', [...UNFINISHED_STATUSES])
        .compile(),
    );
    return changed === 1;
  }

  /**
   * Records a finished cell and moves its run's counters, in one transaction; only while the run is
   * running, and only once per cell. False when the run is no longer running or the cell was
   * already recorded (another replica finished it first).
   */
  async recordCell(evaluationId: string, cell: FinishedCell): Promise<boolean> {
    const row: Selectable<EvaluationCellsTable> = {
      evaluation_id: evaluationId,
      item_index: cell.itemIndex,
      prompt_index: cell.promptIndex,
      model_index: cell.modelIndex,
      generation_id: cell.generationId,
      text: cell.text,
      error: cell.error,
      scores: JSON.stringify(cell.scores),
      mean_score: meanOf(cell.scores.map((score) => score.score)) ?? 0,
      passed: cell.passed ? 1 : 0,
      latency_ms: cell.latencyMs,
      total_tokens: cell.totalTokens,
      cost_units: cell.costUnits,
      finished_at: this.now().getTime(),
      score_0: null,
      score_1: null,
      score_2: null,
      score_3: null,
      score_4: null,
      score_5: null,
      score_6: null,
      score_7: null,
      score_8: null,
      score_9: null,
    };
    if (cell.scores.length > MAX_SCORERS) throw new TooManyScorersError(`a cell has at most ${MAX_SCORERS} scores`);
    cell.scores.forEach((score, index) => {
      row[scoreColumn(index)] = score.score;
    });
    try {
      await this.database.transaction([
        {
          query: this.db
            .updateTable('evaluations')
            .set((eb) => ({
              completed: eb('completed', '+', 1),
              failed: eb('failed', '+', cell.error === null ? 0 : 1),
            }))
            .where('id', '=', evaluationId)
            .where('status', '=', 'running')
            .compile(),
          expectChanges: 1,
          label: 'run',
        },
        {
          query: this.db
            .insertInto('evaluation_cells')
            .values(row)
            .onConflict((conflict) => conflict.columns(['evaluation_id', 'item_index', 'prompt_index', 'model_index']).doNothing())
            .compile(),
          expectChanges: 1,
          label: 'cell',
        },
      ]);
      return true;
    } catch (error) {
      if (error instanceof TransactionConditionError) return false;
      throw error;
    }
  }

  /** The cells of these cases that are already recorded: a resumed run skips them. */
  async finishedCells(evaluationId: string, fromItem: number, toItem: number): Promise<Set<string>> {
    const rows = await this.db
      .selectFrom('evaluation_cells')
      .select(['item_index', 'prompt_index', 'model_index'])
      .where('evaluation_id', '=', evaluationId)
      .where('item_index', '>=', fromItem)
      .where('item_index', '<=', toItem)
      .execute();
    return new Set(rows.map((row) => cellId({ itemIndex: row.item_index, promptIndex: row.prompt_index, modelIndex: row.model_index })));
  }

  /**
   * Finished cells by case, then prompt and model position, one page at a time, with each case's
   * expected answer. Throws InvalidCursorError for a cursor it did not issue.
   */
  async results(
    run: Evaluation,
    filter: { readonly modelIndex?: number },
    page: { readonly limit: number; readonly cursor?: string | null },
  ): Promise<{ readonly results: EvaluationResult[]; readonly nextCursor: string | null }> {
    const after = page.cursor ? decodeCellCursor(page.cursor) : undefined;
    let query = this.db.selectFrom('evaluation_cells').selectAll().where('evaluation_id', '=', run.id);
    if (filter.modelIndex !== undefined) query = query.where('model_index', '=', filter.modelIndex);
    if (after) {
      query = query.where((eb) =>
        eb(eb.refTuple('item_index', 'prompt_index', 'model_index'), '>', eb.tuple(after.itemIndex, after.promptIndex, after.modelIndex)),
      );
    }
    const rows = await query
      .orderBy('item_index')
      .orderBy('prompt_index')
      .orderBy('model_index')
      .limit(page.limit + 1)
      .execute();
    const cells = rows.slice(0, page.limit).map(toFinishedCell);
    const expected = await this.expectedAnswers(run.datasetId, cells);
    const results = cells.map((cell) => ({ ...cell, expected: expected.get(cell.itemIndex) ?? null }));
    const last = cells.at(-1);
    return { results, nextCursor: rows.length > page.limit && last ? encodeCellCursor(last) : null };
  }

  /**
   * Each variant's summary (prompt position x model position), in the run's order; the caller ranks
   * them. One aggregate query, then one index walk per variant for its latency percentile.
   */
  async variants(run: Evaluation): Promise<VariantSummary[]> {
    const scoreAverages = run.scorers.map((_scorer, index) => sql<number | null>`avg(${sql.ref(scoreColumn(index))})`.as(`mean_${index}`));
    const rows = await this.db
      .selectFrom('evaluation_cells')
      .select([
        'prompt_index',
        'model_index',
        sql<number | string>`count(*)`.as('completed'),
        sql<number | string>`sum(case when error is null then 0 else 1 end)`.as('failed'),
        sql<number | string>`sum(passed)`.as('passed'),
        sql<number | string>`sum(mean_score)`.as('score_sum'),
        sql<number | string | null>`sum(latency_ms)`.as('latency_sum'),
        sql<number | string>`count(latency_ms)`.as('latency_count'),
        sql<number | string>`sum(total_tokens)`.as('tokens'),
        sql<number | string>`sum(cost_units)`.as('cost_units'),
        ...scoreAverages,
      ])
      .where('evaluation_id', '=', run.id)
      .groupBy(['prompt_index', 'model_index'])
      .execute();
    const byVariant = new Map(rows.map((row) => [`${row.prompt_index}.${row.model_index}`, row as Record<string, unknown>]));
    const summaries: VariantSummary[] = [];
    for (const [promptIndex, prompt] of run.prompts.entries()) {
      for (const [modelIndex, modelId] of run.modelIds.entries()) {
        const row = byVariant.get(`${promptIndex}.${modelIndex}`);
        const completed = Number(row?.completed ?? 0);
        const passed = Number(row?.passed ?? 0);
        const latencyCount = Number(row?.latency_count ?? 0);
        const costUnits = Number(row?.cost_units ?? 0);
        const scores: Record<string, number> = {};
        if (row) for (const [index, scorer] of run.scorers.entries()) scores[scorer.name] = Number(row[`mean_${index}`] ?? 0);
        summaries.push({
          prompt,
          modelId,
          cases: run.caseCount,
          completed,
          failed: Number(row?.failed ?? 0),
          passed,
          passRate: completed > 0 ? passed / completed : null,
          meanScore: completed > 0 ? Number(row?.score_sum ?? 0) / completed : null,
          scores,
          meanLatencyMs: latencyCount > 0 ? Number(row?.latency_sum ?? 0) / latencyCount : null,
          p95LatencyMs: latencyCount > 0 ? await this.latencyAtRank(run.id, promptIndex, modelIndex, Math.ceil(latencyCount * 0.95)) : null,
          totalTokens: Number(row?.tokens ?? 0),
          costUsd: costUnitsToUsd(costUnits),
          costPerPassUsd: passed > 0 ? costUnitsToUsd(costUnits) / passed : null,
        });
      }
    }
    return summaries;
  }

  /**
   * Claims unfinished runs for this process (without BullMQ): runs nobody holds, or whose holder
   * stopped renewing its claim (`lease_until` passed). `ids` narrows it to those runs. Answers the
   * ids claimed.
   */
  async claim(
    owner: string,
    leaseMs: number,
    options: { readonly ids?: readonly string[]; readonly evenIfHeld?: boolean } = {},
  ): Promise<string[]> {
    const now = this.now().getTime();
    // Read first: an idle database is swept every few seconds, and a write would commit (and, on
    // SQLite, wake its checkpoint thread) for nothing.
    let candidates = this.db
      .selectFrom('evaluations')
      .select('id')
      .where('status', 'in', [...UNFINISHED_STATUSES]);
    if (options.ids) candidates = candidates.where('id', 'in', [...options.ids]);
    const ids = (await candidates.execute()).map((row) => row.id);
    if (ids.length === 0) return [];
    // The update checks the claim again: a replica racing for the same run finds it held.
    let query = this.db
      .updateTable('evaluations')
      .set({ lease_owner: owner, lease_until: now + leaseMs })
      .where('status', 'in', [...UNFINISHED_STATUSES])
      .where('id', 'in', ids);
    if (!options.evenIfHeld) {
      query = query.where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('lease_owner', '=', owner)]));
    }
    const claimed = await this.database.transaction([query.returning('id').compile()]);
    return claimed[0]!.rows.map((row) => String(row.id));
  }

  /** Extends this process's claims on its runs; answers the ids still held (a run that ended drops out). */
  async renew(owner: string, ids: readonly string[], leaseMs: number): Promise<string[]> {
    if (ids.length === 0) return [];
    const result = await this.database.transaction([
      this.db
        .updateTable('evaluations')
        .set({ lease_until: this.now().getTime() + leaseMs })
        .where('lease_owner', '=', owner)
        .where('id', 'in', [...ids])
        .where('status', 'in', [...UNFINISHED_STATUSES])
        .returning('id')
        .compile(),
    ]);
    return result[0]!.rows.map((row) => String(row.id));
  }

  /** Unfinished runs whose every cell is recorded: a process stopped between the last cell and the run's end. */
  async complete(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('evaluations')
      .select('id')
      .where('status', '=', 'running')
      .whereRef('completed', '>=', 'total')
      .execute();
    return rows.map((row) => row.id);
  }

  /** Unfinished runs (BullMQ: queued ones older than `olderThan` are enqueued again, which is idempotent). */
  async unfinished(olderThan?: Date): Promise<Evaluation[]> {
    let query = this.db
      .selectFrom('evaluations')
      .selectAll()
      .where('status', 'in', [...UNFINISHED_STATUSES]);
    if (olderThan) query = query.where('created_at', '<', olderThan.getTime());
    return (await query.orderBy('created_at').execute()).map(toEvaluation);
  }

  private async latencyAtRank(evaluationId: string, promptIndex: number, modelIndex: number, rank: number): Promise<number | null> {
    const row = await this.db
      .selectFrom('evaluation_cells')
      .select('latency_ms')
      .where('evaluation_id', '=', evaluationId)
      .where('prompt_index', '=', promptIndex)
      .where('model_index', '=', modelIndex)
      .where('latency_ms', 'is not', null)
      .orderBy('latency_ms')
      .limit(1)
      .offset(Math.max(0, rank - 1))
      .executeTakeFirst();
    return row?.latency_ms ?? null;
  }

  /** The expected answers of the cases these cells belong to (the dataset's items never change). */
  private async expectedAnswers(datasetId: string, cells: readonly CellKey[]): Promise<Map<number, string | null>> {
    if (cells.length === 0) return new Map();
    const indexes = [...new Set(cells.map((cell) => cell.itemIndex))];
    const rows = await sql<{ item_index: number; expected: string | null }>`
      select item_index, expected from dataset_items
      where dataset_id = ${datasetId} and item_index in (${sql.join(indexes)})`.execute(this.db);
    return new Map(rows.rows.map((row) => [Number(row.item_index), row.expected]));
  }
}

/** A cell's key as one string (sets of finished cells). */
export const cellId = (cell: CellKey): string => `${cell.itemIndex}.${cell.promptIndex}.${cell.modelIndex}`;

const CELL_POSITION = /^(\d{1,9})\.(\d{1,3})\.(\d{1,3})$/;

function encodeCellCursor(cell: CellKey): string {
  return Buffer.from(cellId(cell), 'utf8').toString('base64url');
}

function decodeCellCursor(cursor: string): CellKey {
  const match = CELL_POSITION.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new InvalidCursorError(cursor);
  const cell = { itemIndex: Number(match[1]), promptIndex: Number(match[2]), modelIndex: Number(match[3]) };
  if (encodeCellCursor(cell) !== cursor) throw new InvalidCursorError(cursor);
  return cell;
}

function meanOf(values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length;
}

const toTime = (value: number | string | null): Date | null => (value === null ? null : new Date(Number(value)));

function toEvaluation(row: Selectable<EvaluationsTable>): Evaluation {
  return {
    id: row.id,
    name: row.name,
    status: row.status as EvaluationStatus,
    datasetId: row.dataset_id,
    prompts: JSON.parse(row.prompts),
    modelIds: JSON.parse(row.model_ids),
    scorers: JSON.parse(row.scorers),
    parameters: JSON.parse(row.parameters),
    owner: { name: row.caller, team: row.team, role: row.role === 'admin' ? 'admin' : 'member' },
    caseCount: Number(row.case_count),
    total: Number(row.total),
    completed: Number(row.completed),
    failed: Number(row.failed),
    error: row.error,
    frozenVariants: row.variants === null ? null : JSON.parse(row.variants),
    createdAt: new Date(Number(row.created_at)),
    startedAt: toTime(row.started_at),
    finishedAt: toTime(row.finished_at),
  };
}

function toFinishedCell(row: Selectable<EvaluationCellsTable>): FinishedCell {
  return {
    itemIndex: Number(row.item_index),
    promptIndex: Number(row.prompt_index),
    modelIndex: Number(row.model_index),
    generationId: row.generation_id,
    text: row.text,
    error: row.error,
    scores: JSON.parse(row.scores) as CellScore[],
    passed: Number(row.passed) === 1,
    latencyMs: row.latency_ms === null ? null : Number(row.latency_ms),
    totalTokens: Number(row.total_tokens),
    costUnits: Number(row.cost_units),
  };
}
