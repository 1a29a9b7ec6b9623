export type Thumbs = 'up' | 'down';
export const THUMBS: readonly Thumbs[] = ['up', 'down'];

export type FeedbackGroupBy = 'model' | 'prompt';
export const FEEDBACK_GROUP_BY: readonly FeedbackGroupBy[] = ['model', 'prompt'];

export type ExportFormat = 'chat' | 'preference';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['chat', 'preference'];

/** One piece of feedback to record (already validated by the service). */
export interface FeedbackSubmission {
  readonly generationId: string;
  /** Who gives it. */
  readonly caller: string;
  readonly score: number | null;
  readonly thumbs: Thumbs | null;
  readonly comment: string | null;
  readonly correction: string | null;
  readonly tags: readonly string[];
}

/** A recorded piece: what was submitted, with its id, the generation's model and its time. */
export interface Feedback extends FeedbackSubmission {
  readonly id: string;
  readonly modelId: string;
  readonly createdAt: Date;
}

export interface FeedbackFilter {
  /** Only feedback on this caller's generations (a member's view). */
  readonly owner?: string;
  readonly generationId?: string;
  readonly modelId?: string;
  /** When the feedback was given: inclusive. */
  readonly since?: Date;
  /** Exclusive. */
  readonly until?: Date;
}

export interface FeedbackPage {
  readonly feedback: readonly Feedback[];
  readonly nextCursor: string | null;
}

export interface FeedbackSummaryRow {
  /** The model id, or `<prompt name>@<version>` ("" for generations without a prompt version). */
  readonly group: string;
  readonly count: number;
  /** Null when no piece in the group has a score. */
  readonly meanScore: number | null;
  readonly thumbsUp: number;
  readonly thumbsDown: number;
  readonly corrections: number;
}

export interface FeedbackExportRequest {
  readonly format: ExportFormat;
  readonly filter: FeedbackFilter;
  /** A generation without a correction qualifies for `chat` with a thumbs up or a score at least this. */
  readonly minScore: number;
}

/** One fine-tuning example, before it is written in its format. */
export type ExportLine =
  | { readonly format: 'chat'; readonly prompt: string; readonly answer: string }
  | { readonly format: 'preference'; readonly prompt: string; readonly preferred: string; readonly nonPreferred: string };

/** The generation does not exist, is still running, or belongs to another caller: one error, so they look alike. */
export class GenerationNotFeedbackableError extends Error {
  override readonly name = 'GenerationNotFeedbackableError';

  constructor(readonly generationId: string) {
    super(`generation ${generationId} cannot take feedback from this caller`);
  }
}
