import { type Expression, type ExpressionBuilder, type Kysely, type Selectable, type SqlBool, sql } from 'kysely';
import type { LedgerDatabase } from './database';
import {
  type ExportLine,
  type Feedback,
  type FeedbackExportRequest,
  type FeedbackFilter,
  type FeedbackGroupBy,
  type FeedbackPage,
  type FeedbackSubmission,
  type FeedbackSummaryRow,
  GenerationNotFeedbackableError,
  type Thumbs,
} from './feedback-types';
import { newFeedbackId } from './generation-id';
import { decodeCursor, pageOf } from './ledger-cursor';
import type { Database, FeedbackTable } from './schema';

/** Generations per export chunk: what one chunk holds in memory, whatever the export's size. */
const EXPORT_CHUNK = 500;
/** The largest page `list` serves. */
export const MAX_FEEDBACK_PAGE_SIZE = 1000;

const IN_PROGRESS = 'in_progress';

type Tables = Database & { f: FeedbackTable };

/**
 * Human feedback on the ledger's generations. Who may see a piece follows its generation's caller
 * (`owner` in a filter): a member sees all feedback on their own generations, whoever gave it.
 */
export class FeedbackRepository {
  private readonly db: Kysely<Database>;

  constructor(
    private readonly database: LedgerDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.db = database.db;
  }

  /**
   * Records one piece of feedback on a finished generation; with `owner`, only on a generation of
   * that caller. Throws GenerationNotFeedbackableError for a missing, unfinished or foreign one.
   */
  async add(submission: FeedbackSubmission, owner?: string): Promise<Feedback> {
    const generation = await this.db
      .selectFrom('generations')
      .select(['id', 'caller', 'model_id'])
      .where('id', '=', submission.generationId)
      .where('status', '!=', IN_PROGRESS)
      .executeTakeFirst();
    if (!generation || (owner !== undefined && generation.caller !== owner)) {
      throw new GenerationNotFeedbackableError(submission.generationId);
    }
    const createdAt = this.now();
    const row: Selectable<FeedbackTable> = {
      id: newFeedbackId(createdAt),
      generation_id: generation.id,
      model_id: generation.model_id,
      caller: submission.caller,
      score: submission.score,
      thumbs: submission.thumbs,
      comment: submission.comment,
      correction: submission.correction,
      tags: JSON.stringify(submission.tags),
      created_at: createdAt.getTime(),
    };
    // Generations are never deleted, so the row read above still exists when this commits.
    await this.database.write(this.db.insertInto('feedback').values(row).compile());
    return toFeedback(row);
  }

  /** Feedback, newest first, one page at a time. Throws InvalidCursorError for a cursor it did not issue. */
  async list(filter: FeedbackFilter, page: { readonly limit: number; readonly cursor?: string | null }): Promise<FeedbackPage> {
    if (!Number.isSafeInteger(page.limit) || page.limit < 1 || page.limit > MAX_FEEDBACK_PAGE_SIZE) {
      throw new RangeError(`a page holds 1 to ${MAX_FEEDBACK_PAGE_SIZE} pieces of feedback, not ${page.limit}`);
    }
    const after = page.cursor ? decodeCursor(page.cursor) : undefined;
    const rows = await this.db
      .selectFrom('feedback as f')
      .selectAll('f')
      .where((eb) => {
        const conditions = feedbackConditions(eb, filter);
        if (after) conditions.push(eb(eb.refTuple('f.created_at', 'f.id'), '<', eb.tuple(after.createdAtMs, after.id)));
        return eb.and(conditions);
      })
      .orderBy('f.created_at', 'desc')
      .orderBy('f.id', 'desc')
      .limit(page.limit + 1)
      .execute();
    const { items: feedback, nextCursor } = pageOf(rows.map(toFeedback), page.limit);
    return { feedback, nextCursor };
  }

  /** Every piece of feedback on these generations, newest first per generation: one query, whatever their number. */
  async forGenerations(generationIds: readonly string[]): Promise<Map<string, Feedback[]>> {
    const byGeneration = new Map<string, Feedback[]>(generationIds.map((id) => [id, []]));
    if (generationIds.length === 0) return byGeneration;
    const rows = await this.db
      .selectFrom('feedback')
      .selectAll()
      .where('generation_id', 'in', [...new Set(generationIds)])
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    for (const row of rows) byGeneration.get(row.generation_id)?.push(toFeedback(row));
    return byGeneration;
  }

  /** Counts, mean score, thumbs and corrections per model or per prompt version (`name@version`, or "" without one). */
  async summary(filter: FeedbackFilter, groupBy: FeedbackGroupBy): Promise<FeedbackSummaryRow[]> {
    const group =
      groupBy === 'model'
        ? sql<string>`f.model_id`
        : sql<string>`case when g.prompt_name is null or g.prompt_version is null then '' else g.prompt_name || '@' || cast(g.prompt_version as text) end`;
    // Every piece of feedback in the range: off the event loop on SQLite.
    const rows = await this.database.reports
      .selectFrom('feedback as f')
      .innerJoin('generations as g', 'g.id', 'f.generation_id')
      .select([
        group.as('group_key'),
        sql<number>`count(*)`.as('count'),
        sql<number | null>`avg(f.score)`.as('mean_score'),
        sql<number>`sum(case when f.thumbs = 'up' then 1 else 0 end)`.as('thumbs_up'),
        sql<number>`sum(case when f.thumbs = 'down' then 1 else 0 end)`.as('thumbs_down'),
        sql<number>`sum(case when f.correction is not null then 1 else 0 end)`.as('corrections'),
      ])
      .where((eb) => eb.and(feedbackConditions(eb as unknown as ExpressionBuilder<Tables, 'f'>, filter, 'g')))
      .groupBy(group)
      .execute();
    return (
      rows
        .map((row) => ({
          group: String(row.group_key),
          count: Number(row.count),
          meanScore: row.mean_score === null ? null : Number(row.mean_score),
          thumbsUp: Number(row.thumbs_up),
          thumbsDown: Number(row.thumbs_down),
          corrections: Number(row.corrections),
        }))
        // Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order disagree on text.
        .sort((left, right) => (left.group < right.group ? -1 : left.group > right.group ? 1 : 0))
    );
  }

  /**
   * Fine-tuning examples built from the feedback that `filter` selects, one per qualifying
   * generation, read in chunks of generations (memory stays flat however many there are).
   * `chat`: the newest correction, else the generated text when any piece is a thumbs up or scores
   * at least `minScore`. `preference`: generations with a correction (newest preferred, the
   * generated text not). Generations recorded without content are left out.
   */
  async *exportLines(request: FeedbackExportRequest): AsyncGenerator<ExportLine> {
    let after = '';
    for (;;) {
      // The chunk's generations with their content (grouped by the primary key, so PostgreSQL
      // accepts the other columns of `g`), then the feedback that decides each one's line.
      const generations = await this.db
        .selectFrom('feedback as f')
        .innerJoin('generations as g', 'g.id', 'f.generation_id')
        .select(['g.id', 'g.prompt', 'g.text'])
        .where((eb) => {
          const conditions = feedbackConditions(eb as unknown as ExpressionBuilder<Tables, 'f'>, request.filter, 'g');
          conditions.push(eb('g.id', '>', after), eb('g.prompt', 'is not', null), eb('g.text', 'is not', null));
          return eb.and(conditions);
        })
        .groupBy('g.id')
        .orderBy('g.id')
        .limit(EXPORT_CHUNK)
        .execute();
      if (generations.length === 0) return;
      const ids = generations.map((row) => row.id);
      after = ids.at(-1)!;
      const pieces = await this.db
        .selectFrom('feedback as f')
        .select(['f.generation_id', 'f.score', 'f.thumbs', 'f.correction', 'f.created_at', 'f.id'])
        .where((eb) =>
          eb.and([
            ...feedbackConditions(eb as unknown as ExpressionBuilder<Tables, 'f'>, { ...request.filter, owner: undefined }),
            eb('f.generation_id', 'in', ids),
          ]),
        )
        .orderBy('f.created_at', 'desc')
        .orderBy('f.id', 'desc')
        .execute();
      const newestCorrection = new Map<string, string>();
      const liked = new Set<string>();
      for (const piece of pieces) {
        if (piece.correction !== null && !newestCorrection.has(piece.generation_id))
          newestCorrection.set(piece.generation_id, piece.correction);
        if (piece.thumbs === 'up' || (piece.score !== null && Number(piece.score) >= request.minScore)) liked.add(piece.generation_id);
      }
      for (const { id, prompt, text } of generations) {
        if (!prompt || text === null) continue;
        const correction = newestCorrection.get(id);
        if (request.format === 'preference') {
          if (correction !== undefined) yield { format: 'preference', prompt: prompt, preferred: correction, nonPreferred: text };
        } else if (correction !== undefined) {
          yield { format: 'chat', prompt: prompt, answer: correction };
        } else if (liked.has(id) && text !== '') {
          yield { format: 'chat', prompt: prompt, answer: text };
        }
      }
    }
  }
}

/** The filter's conditions on `feedback as f`; an owner (or a prompt group) needs `generations as g` joined. */
function feedbackConditions(eb: ExpressionBuilder<Tables, 'f'>, filter: FeedbackFilter, joined?: 'g'): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [];
  if (filter.owner !== undefined) {
    const ownerCondition = joined
      ? sql<SqlBool>`g.caller = ${filter.owner}`
      : sql<SqlBool>`exists (select 1 from generations g where g.id = f.generation_id and g.caller = ${filter.owner})`;
    conditions.push(ownerCondition);
  }
  if (filter.generationId !== undefined) conditions.push(eb('f.generation_id', '=', filter.generationId));
  if (filter.modelId !== undefined) conditions.push(eb('f.model_id', '=', filter.modelId));
  if (filter.since !== undefined) conditions.push(eb('f.created_at', '>=', filter.since.getTime()));
  if (filter.until !== undefined) conditions.push(eb('f.created_at', '<', filter.until.getTime()));
  return conditions;
}

function toFeedback(row: Selectable<FeedbackTable>): Feedback {
  return {
    id: row.id,
    generationId: row.generation_id,
    modelId: row.model_id,
    caller: row.caller,
    score: row.score === null ? null : Number(row.score),
    thumbs: row.thumbs as Thumbs | null,
    comment: row.comment,
    correction: row.correction,
    tags: JSON.parse(row.tags) as string[],
    createdAt: new Date(Number(row.created_at)),
  };
}
