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

/** One immutable version of a prompt template, shared by every caller (migration 0004). */
export interface PromptsTable {
  name: string;
  /** 1, 2, 3... per name. */
  version: number;
  template: string;
  /** JSON array of the placeholders' names, in order of first use. */
  variables: string;
  description: string | null;
  /** The default model; null for none. */
  model_id: string | null;
  /** Default parameters; null when the version sets none. */
  max_tokens: number | null;
  temperature: number | null;
  top_p: number | null;
  /** Epoch milliseconds, UTC (BIGINT). */
  created_at: number;
}

/** An evaluation dataset: named test cases, shared by every caller (migration 0005). */
export interface DatasetsTable {
  /** `ds_` + time-ordered random. */
  id: string;
  name: string;
  description: string | null;
  /** How many items it holds: also the next item's index. */
  item_count: number;
  /** Epoch milliseconds, UTC (BIGINT). */
  created_at: number;
}

/** One test case of a dataset (migration 0005). */
export interface DatasetItemsTable {
  dataset_id: string;
  /** 0-based, in the order the items were given. */
  item_index: number;
  /** JSON object of string values: the prompt's variables. */
  variables: string;
  expected: string | null;
}

/** An evaluation run (migration 0006). */
export interface EvaluationsTable {
  /** `ev_` + time-ordered random. */
  id: string;
  name: string | null;
  /** queued | running | succeeded | failed | cancelled */
  status: string;
  dataset_id: string;
  /** JSON array of {name, version}: the versions resolved when the run was created. */
  prompts: string;
  /** JSON array of model ids. */
  model_ids: string;
  /** JSON array of normalized scorers (services/scorers.ts ScorerSpec). */
  scorers: string;
  /** JSON {max_tokens?, temperature?, top_p?}: the run's overrides. */
  parameters: string;
  /** Who started it: its cells are that caller's generations (budgets, usage). */
  caller: string;
  team: string | null;
  role: string;
  /** The dataset's cases when the run was created (cases appended later are not in the run). */
  case_count: number;
  /** case_count x prompts x models. */
  total: number;
  /** Cells recorded (failed ones included), moved with each cell. */
  completed: Generated<number>;
  /** Cells whose generation failed. */
  failed: Generated<number>;
  error: string | null;
  /** JSON of the variants, frozen when the run ends; null while it runs. */
  variants: string | null;
  /** The process working the run without BullMQ, and until when its claim holds (epoch ms). */
  lease_owner: string | null;
  lease_until: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

/** One cell of a run: a case x prompt version x model (migration 0006). */
export interface EvaluationCellsTable {
  evaluation_id: string;
  item_index: number;
  /** Position in the run's `prompts`. */
  prompt_index: number;
  /** Position in the run's `model_ids`. */
  model_index: number;
  /** The candidate generation's ledger row; null when none was started. */
  generation_id: string | null;
  text: string | null;
  /** The error code when the generation failed. */
  error: string | null;
  /** JSON array of {scorer, score, passed, note}. */
  scores: string;
  mean_score: number;
  /** 1 when every scorer passed. */
  passed: number;
  latency_ms: number | null;
  total_tokens: number;
  cost_units: number;
  finished_at: number;
  score_0: number | null;
  score_1: number | null;
  score_2: number | null;
  score_3: number | null;
  score_4: number | null;
  score_5: number | null;
  score_6: number | null;
  score_7: number | null;
  score_8: number | null;
  score_9: number | null;
}

export interface Database {
  generations: GenerationsTable;
  feedback: FeedbackTable;
  budgets: BudgetsTable;
  budget_usage: BudgetUsageTable;
  prompts: PromptsTable;
  datasets: DatasetsTable;
  dataset_items: DatasetItemsTable;
  evaluations: EvaluationsTable;
  evaluation_cells: EvaluationCellsTable;
}
