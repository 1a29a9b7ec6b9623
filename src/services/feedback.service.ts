import { generationNotFound, ledgerUnavailable, validationError } from '../errors/api-error';
import type { Caller } from '../pipeline/caller';
import type { FeedbackRepository } from '../storage/feedback-repository';
import {
  type ExportFormat,
  type ExportLine,
  type Feedback,
  type FeedbackFilter,
  type FeedbackGroupBy,
  type FeedbackPage,
  type FeedbackSummaryRow,
  GenerationNotFeedbackableError,
  THUMBS,
  type Thumbs,
} from '../storage/feedback-types';
import { callLedger } from './ledger-call';
import { invalidCursor, pageLimit, periodOf } from './paging';

/** The contract's bounds on a piece of feedback. */
export const FEEDBACK_LIMITS = {
  commentMaxLength: 4000,
  correctionMaxLength: 100_000,
  maxTags: 20,
  tagMaxLength: 64,
} as const;
/** `min_score` when the export request leaves it out. */
export const DEFAULT_MIN_SCORE = 0.8;

export interface FeedbackInput {
  readonly generationId: string;
  readonly score?: number | null;
  readonly thumbs?: string | null;
  readonly comment?: string | null;
  readonly correction?: string | null;
  readonly tags?: readonly string[] | null;
}

export interface FeedbackQuery {
  readonly generationId?: string | null;
  readonly modelId?: string | null;
  readonly since?: Date | null;
  readonly until?: Date | null;
  readonly limit?: number | null;
  readonly cursor?: string | null;
}

export interface FeedbackExportQuery {
  readonly format: ExportFormat;
  readonly modelId?: string | null;
  readonly minScore?: number | null;
  readonly since?: Date | null;
  readonly until?: Date | null;
}

/**
 * Human feedback with the roles applied: a member gives feedback on, and reads, counts and exports
 * the feedback of, their own generations only (whoever gave it); an admin any. Another caller's
 * generation is not found, exactly like a missing one.
 */
export class FeedbackService {
  constructor(
    /** Undefined with LEDGER=off: there are no generations to give feedback on. */
    private readonly repository: FeedbackRepository | undefined,
    private readonly onError: (error: unknown) => void,
  ) {}

  submit(caller: Caller, input: FeedbackInput): Promise<Feedback> {
    const submission = {
      generationId: input.generationId,
      caller: caller.name,
      score: checkScore(input.score),
      thumbs: checkThumbs(input.thumbs),
      comment: checkText('comment', input.comment, 0, FEEDBACK_LIMITS.commentMaxLength),
      correction: checkText('correction', input.correction, 1, FEEDBACK_LIMITS.correctionMaxLength),
      tags: checkTags(input.tags),
    };
    if (submission.score === null && submission.thumbs === null && submission.comment === null && submission.correction === null) {
      throw validationError('Invalid request parameters', 'give at least one of score, thumbs, comment and correction');
    }
    return this.call(
      (repository) => repository.add(submission, ownerOf(caller)),
      (error) => (error instanceof GenerationNotFeedbackableError ? generationNotFound(error.generationId) : undefined),
    );
  }

  list(caller: Caller, query: FeedbackQuery): Promise<FeedbackPage> {
    const limit = pageLimit(query.limit);
    // Another caller's generation_id simply matches nothing of a member's: an empty page.
    const filter: FeedbackFilter = {
      ...this.filterOf(caller, query),
      ...(query.generationId ? { generationId: query.generationId } : {}),
    };
    return this.call((repository) => repository.list(filter, { limit, cursor: query.cursor }), invalidCursor);
  }

  /** The feedback on generations the caller already sees, by generation id (the Generation.feedback field's batch). */
  forGenerations(generationIds: readonly string[]): Promise<Map<string, Feedback[]>> {
    return this.call((repository) => repository.forGenerations(generationIds));
  }

  summary(caller: Caller, query: { readonly groupBy: FeedbackGroupBy; readonly since?: Date | null; readonly until?: Date | null }) {
    const filter = this.filterOf(caller, query);
    return this.call((repository): Promise<FeedbackSummaryRow[]> => repository.summary(filter, query.groupBy));
  }

  /**
   * The examples of an export, checked before the first one is read (a bad request is refused
   * before any byte of the file is sent). Reading them may still fail with ledger_unavailable.
   */
  export(caller: Caller, query: FeedbackExportQuery): AsyncIterable<ExportLine> {
    const minScore = query.minScore ?? DEFAULT_MIN_SCORE;
    if (!Number.isFinite(minScore) || minScore < 0 || minScore > 1) {
      throw validationError('Invalid request parameters', 'min_score: must be a number from 0 to 1');
    }
    const filter = this.filterOf(caller, query);
    const repository = this.available();
    const lines = repository.exportLines({ format: query.format, filter, minScore });
    const onError = this.onError;
    return {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = await callLedger(() => lines.next(), onError);
          if (next.done) return;
          yield next.value;
        }
      },
    };
  }

  private filterOf(
    caller: Caller,
    query: { readonly modelId?: string | null; readonly since?: Date | null; readonly until?: Date | null },
  ): FeedbackFilter {
    const owner = ownerOf(caller);
    return {
      ...(owner !== undefined ? { owner } : {}),
      ...(query.modelId ? { modelId: query.modelId } : {}),
      ...periodOf(query),
    };
  }

  private available(): FeedbackRepository {
    if (!this.repository) throw ledgerUnavailable('the ledger is off (LEDGER=off): there are no generations to give feedback on');
    return this.repository;
  }

  private call<T>(query: (repository: FeedbackRepository) => Promise<T>, translate?: (error: unknown) => Error | undefined): Promise<T> {
    const repository = this.available();
    return callLedger(() => query(repository), this.onError, translate);
  }
}

/** Whose generations a caller's feedback operations may touch: a member's own; an admin's, anyone's. */
const ownerOf = (caller: Caller): string | undefined => (caller.role === 'admin' ? undefined : caller.name);

function checkScore(score: number | null | undefined): number | null {
  if (score === null || score === undefined) return null;
  if (!Number.isFinite(score) || score < 0 || score > 1)
    throw validationError('Invalid request parameters', 'score: must be a number from 0 to 1');
  return score;
}

function checkThumbs(thumbs: string | null | undefined): Thumbs | null {
  if (thumbs === null || thumbs === undefined) return null;
  if (!(THUMBS as readonly string[]).includes(thumbs))
    throw validationError('Invalid request parameters', 'thumbs: must be "up" or "down"');
  return thumbs as Thumbs;
}

function checkText(field: string, text: string | null | undefined, minLength: number, maxLength: number): string | null {
  if (text === null || text === undefined) return null;
  if (text.length < minLength) throw validationError('Invalid request parameters', `${field}: must not be empty`);
  if (text.length > maxLength)
    throw validationError('Invalid request parameters', `${field}: at most ${maxLength} characters, got ${text.length}`);
  return text;
}

function checkTags(tags: readonly string[] | null | undefined): string[] {
  if (!tags) return [];
  if (tags.length > FEEDBACK_LIMITS.maxTags) {
    throw validationError('Invalid request parameters', `tags: at most ${FEEDBACK_LIMITS.maxTags} tags, got ${tags.length}`);
  }
  for (const [index, tag] of tags.entries()) {
    if (tag.length < 1 || tag.length > FEEDBACK_LIMITS.tagMaxLength) {
      throw validationError(
        'Invalid request parameters',
        `tags[${index}]: 1 to ${FEEDBACK_LIMITS.tagMaxLength} characters, got ${tag.length}`,
      );
    }
  }
  return [...tags];
}
