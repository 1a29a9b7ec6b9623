import type { Generated } from 'kysely';

/**
 * The ledger's tables as Kysely sees them: one typed query layer for SQLite and PostgreSQL.
 *
 * Portable column types only: times are integer epoch milliseconds (they sort, compare and
 * group by UTC day identically in both stores) and money is an integer count of cost units
 * (see cost-units.ts), so sums are exact in both.
 */
export interface GenerationsTable {
  /** `gen_` + time-ordered random (generation-id.ts). */
  id: string;
  request_id: string;
  /** The key's name, or `anonymous` with authentication off. */
  caller: string;
  team: string | null;
  /** generate | batch | stream | compare | prompt | evaluation | openai */
  source: string;
  model_id: string;
  provider: string;
  upstream_model: string;
  /** `in_progress` while the generation runs, then succeeded | failed | cancelled. */
  status: string;
  error: string | null;
  finish_reason: string | null;
  /** Null when content recording is off. */
  prompt: string | null;
  /** Null when content recording is off or nothing was generated. */
  text: string | null;
  prompt_name: string | null;
  prompt_version: number | null;
  evaluation_id: string | null;
  max_tokens: number;
  temperature: number;
  top_p: number;
  input_tokens: number;
  output_tokens: number;
  /** Cost in units of 1e-10 USD (BIGINT). */
  cost_units: number;
  /** Null while in progress. */
  latency_ms: number | null;
  /** JSON array of the upstream attempts. */
  attempts: string;
  /** Epoch milliseconds, UTC (BIGINT). */
  created_at: number;
  /** Epoch milliseconds, UTC (BIGINT); null while in progress. */
  finished_at: number | null;
  /** Held on `budget_ids` for this generation's worst case (cost units); settled when it ends (migration 0002). */
  reserved_units: Generated<number>;
  /** JSON array of the budgets holding `reserved_units`; null when none applied. */
  budget_ids: string | null;
}

/** A spending limit (migration 0002). */
export interface BudgetsTable {
  /** `bud_` + random. */
  id: string;
  /** global | team | key */
  scope: string;
  /** The team or key name; null for global. */
  subject: string | null;
  /** Only generations of this model count; null for every model. */
  model_id: string | null;
  /** The limit in cost units (BIGINT). */
  limit_units: number;
  /** day | week | month | total */
  period: string;
  /** Epoch milliseconds, UTC (BIGINT). */
  created_at: number;
  /** Epoch milliseconds, UTC (BIGINT). */
  updated_at: number;
}

/** A budget's counters for one period: the reservation check reads one row, not the ledger. */
export interface BudgetUsageTable {
  budget_id: string;
  /** The period's first instant in epoch milliseconds (BIGINT); 0 for a `total` budget. */
  period_start: number;
  /** Settled cost in cost units (BIGINT). */
  spent_units: number;
  /** Held for generations in flight, in cost units (BIGINT). */
  reserved_units: number;
}

/** A piece of human feedback on a generation (migration 0003). */
export interface FeedbackTable {
  /** `fb_` + time-ordered random. */
  id: string;
  generation_id: string;
  /** The generation's model, copied when the feedback is given. */
  model_id: string;
  /** Who gave it (the reviewer's key name). */
  caller: string;
  /** 0 to 1. */
  score: number | null;
  /** up | down */
  thumbs: string | null;
  comment: string | null;
  correction: string | null;
  /** JSON array of strings. */
  tags: string;
  /** Epoch milliseconds, UTC (BIGINT). */
  created_at: number;
}

export interface Database {
  generations: GenerationsTable;
  feedback: FeedbackTable;
  budgets: BudgetsTable;
  budget_usage: BudgetUsageTable;
}
