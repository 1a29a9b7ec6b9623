import type { PromptRef } from './ledger-types';

export type EvaluationStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const EVALUATION_STATUSES: readonly EvaluationStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
/** A run in one of these statuses still has cells to do. */
export const UNFINISHED_STATUSES: readonly EvaluationStatus[] = ['queued', 'running'];

/** A scorer as a run stores it: normalized (name and threshold filled in) when the run was created. */
export interface ScorerDefinition {
  readonly type: string;
  readonly name: string;
  readonly value?: string;
  readonly judgeModelId?: string;
  readonly rubric?: string;
  readonly threshold: number;
}

/** The run's own generation parameters; each overrides the prompt version's, which override the defaults. */
export interface RunParameters {
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
}

/** Who started a run: its cells are generations of that caller (budgets, usage, visibility). */
export interface RunOwner {
  readonly name: string;
  readonly team: string | null;
  readonly role: 'admin' | 'member';
}

export interface NewEvaluation {
  readonly name: string | null;
  readonly datasetId: string;
  readonly prompts: readonly PromptRef[];
  readonly modelIds: readonly string[];
  readonly scorers: readonly ScorerDefinition[];
  readonly parameters: RunParameters;
  readonly owner: RunOwner;
  readonly caseCount: number;
  /** The creating process's claim, written with the row: no other replica can take the run before that process queues it. */
  readonly lease?: { readonly owner: string; readonly leaseMs: number };
}

export interface VariantSummary {
  readonly prompt: PromptRef;
  readonly modelId: string;
  readonly cases: number;
  readonly completed: number;
  readonly failed: number;
  readonly passed: number;
  readonly passRate: number | null;
  readonly meanScore: number | null;
  /** Mean score per scorer name. */
  readonly scores: Readonly<Record<string, number>>;
  readonly meanLatencyMs: number | null;
  readonly p95LatencyMs: number | null;
  readonly totalTokens: number;
  readonly costUsd: number;
  readonly costPerPassUsd: number | null;
}

export interface Evaluation extends NewEvaluation {
  readonly id: string;
  readonly status: EvaluationStatus;
  readonly total: number;
  readonly completed: number;
  readonly failed: number;
  readonly error: string | null;
  /** Frozen when the run ended; null while it runs (the service computes them then). */
  readonly frozenVariants: readonly VariantSummary[] | null;
  readonly createdAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

/** A cell's place in its run. */
export interface CellKey {
  readonly itemIndex: number;
  readonly promptIndex: number;
  readonly modelIndex: number;
}

export interface CellScore {
  readonly scorer: string;
  readonly score: number;
  readonly passed: boolean;
  readonly note: string | null;
}

export interface FinishedCell extends CellKey {
  readonly generationId: string | null;
  readonly text: string | null;
  /** The error code when the generation failed. */
  readonly error: string | null;
  /** One per scorer, in the run's scorer order. */
  readonly scores: readonly CellScore[];
  readonly passed: boolean;
  readonly latencyMs: number | null;
  readonly totalTokens: number;
  readonly costUnits: number;
}

export interface EvaluationResult extends FinishedCell {
  readonly expected: string | null;
}

/** Too many scorers for the cells' score columns. */
export class TooManyScorersError extends RangeError {
  override readonly name = 'TooManyScorersError';
}
