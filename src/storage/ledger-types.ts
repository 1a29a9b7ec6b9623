/** How a generation ended. */
export type GenerationStatus = 'succeeded' | 'failed' | 'cancelled';
export const GENERATION_STATUSES: readonly GenerationStatus[] = ['succeeded', 'failed', 'cancelled'];

/** Which surface or run made a generation. */
export type LedgerSource = 'generate' | 'batch' | 'stream' | 'compare' | 'prompt' | 'evaluation' | 'openai';
export const LEDGER_SOURCES: readonly LedgerSource[] = ['generate', 'batch', 'stream', 'compare', 'prompt', 'evaluation', 'openai'];

/** One upstream call of a generation (retries and fallbacks each add one). */
export interface GenerationAttempt {
  /** The model tried: the one asked for, or a fallback (absent in rows written before fallbacks existed). */
  readonly modelId?: string;
  readonly provider: string;
  readonly upstreamModel: string;
  /** The error code of a failed attempt; null when it succeeded. */
  readonly error: string | null;
  readonly latencyMs: number | null;
}

export interface RecordedParameters {
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  /** As requested; the ledger keeps no column for it (traces report it), so rows read back without one. */
  readonly seed?: number;
}

export interface PromptRef {
  readonly name: string;
  readonly version: number;
}

/** What is known when a generation starts, before any upstream call. */
export interface GenerationStart {
  /** From `newGenerationId(createdAt)`. */
  readonly id: string;
  readonly requestId: string;
  /** The key's name, or `anonymous` with authentication off. */
  readonly caller: string;
  readonly team: string | null;
  readonly source: LedgerSource;
  readonly modelId: string;
  readonly provider: string;
  readonly upstreamModel: string;
  readonly prompt: string;
  readonly promptRef: PromptRef | null;
  readonly evaluationId: string | null;
  readonly parameters: RecordedParameters;
  readonly createdAt: Date;
}

/** How a generation ended. */
export interface GenerationOutcome {
  readonly status: GenerationStatus;
  /** The error code when not succeeded; null when it succeeded. */
  readonly error: string | null;
  readonly finishReason: string | null;
  /** The endpoint that answered last, when a fallback changed it since the start. */
  readonly provider?: string;
  readonly upstreamModel?: string;
  /** Null when nothing was generated. */
  readonly text: string | null;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** What was billed, in USD (precision 1e-10). */
  readonly costUsd: number;
  readonly latencyMs: number;
  readonly attempts: readonly GenerationAttempt[];
}

/** A finished row of the ledger. */
export interface Generation {
  readonly id: string;
  readonly requestId: string;
  readonly caller: string;
  readonly team: string | null;
  readonly source: LedgerSource;
  readonly modelId: string;
  readonly provider: string;
  readonly upstreamModel: string;
  readonly status: GenerationStatus;
  readonly error: string | null;
  readonly finishReason: string | null;
  readonly prompt: string | null;
  readonly text: string | null;
  readonly promptRef: PromptRef | null;
  readonly evaluationId: string | null;
  readonly parameters: RecordedParameters;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costUsd: number;
  /** The exact cost, in 1e-10 USD (COST_UNITS_PER_USD). */
  readonly costUnits: number;
  readonly latencyMs: number;
  readonly attempts: readonly GenerationAttempt[];
  readonly createdAt: Date;
  readonly finishedAt: Date;
}

/** Which finished generations a list or a usage report covers; every field narrows. */
export interface LedgerFilter {
  readonly caller?: string;
  readonly team?: string;
  readonly modelId?: string;
  readonly status?: GenerationStatus;
  readonly source?: LedgerSource;
  /** Inclusive. */
  readonly since?: Date;
  /** Exclusive. */
  readonly until?: Date;
}

export interface PageRequest {
  /** 1 to MAX_PAGE_SIZE (the service applies the contract's 1-200). */
  readonly limit: number;
  /** The previous page's `nextCursor`; absent for the first page. */
  readonly cursor?: string | null;
}

export interface GenerationPage {
  /** Newest first. */
  readonly generations: readonly Generation[];
  /** Null on the last page. */
  readonly nextCursor: string | null;
}

export type UsageGroupBy = 'model' | 'caller' | 'team' | 'day';
export const USAGE_GROUP_BY: readonly UsageGroupBy[] = ['model', 'caller', 'team', 'day'];

export interface UsageTotals {
  /** Every finished generation, cancelled ones included. */
  readonly requests: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens: number;
  readonly costUsd: number;
  /** The exact cost, in 1e-10 USD (COST_UNITS_PER_USD). */
  readonly costUnits: bigint;
}

export interface UsageRow extends UsageTotals {
  /** The model id, caller, team (`""` for none) or UTC day (YYYY-MM-DD). */
  readonly group: string;
}

export interface UsageReport {
  readonly groupBy: UsageGroupBy;
  readonly since: Date | null;
  readonly until: Date | null;
  /** Sorted by group. */
  readonly rows: readonly UsageRow[];
  /** Exactly the sum of the rows. */
  readonly totals: UsageTotals;
}
