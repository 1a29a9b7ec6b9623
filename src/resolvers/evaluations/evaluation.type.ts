import { Field, Float, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { SCORER_TYPES } from '../../services/scorers';
import { EVALUATION_STATUSES } from '../../storage/evaluation-types';
import { PromptRef } from '../generate/generate.type';
import { enumOf } from '../shared/enums';
import { DateTimeISO, JSONObject } from '../shared/scalars';

export const EvaluationStatus = enumOf(EVALUATION_STATUSES);
registerEnumType(EvaluationStatus, {
  name: 'EvaluationStatus',
  description: 'Where a run is: queued, then running, then succeeded, failed (see error) or cancelled.',
  valuesConfig: {
    queued: { description: 'Accepted; no cell has started yet.' },
    running: { description: 'Cells are being generated and scored.' },
    succeeded: { description: 'Every cell is finished (some may have failed generations).' },
    failed: { description: 'The run stopped early; `error` says why (e.g. budget_exceeded). Finished cells are kept.' },
    cancelled: { description: 'Someone cancelled it; finished cells are kept.' },
  },
});

export const ScorerType = enumOf(SCORER_TYPES);
registerEnumType(ScorerType, {
  name: 'ScorerType',
  description: 'How a scorer grades a cell.',
  valuesConfig: {
    exact_match: { description: "The text equals `value` (or the case's expected): 1, else 0." },
    contains: { description: "The text contains `value` (or the case's expected): 1, else 0." },
    regex: { description: 'The JavaScript regular expression `value` (or expected) matches anywhere in the text: 1, else 0.' },
    json_valid: { description: 'The text parses as JSON: 1, else 0.' },
    similarity: { description: '1 - levenshtein(text, expected) / the longer length (1 when both are empty).' },
    llm_judge: {
      description: '`judge_model_id` grades the text against `rubric` (and expected) from 0 to 10; the score is the grade / 10.',
    },
  },
});

const scorerFields = {
  name: 'Defaults to the type; unique within a run.',
  value: "What to compare with; the case's expected answer when absent.",
  judge: 'llm_judge: the catalog model that grades.',
  rubric: 'llm_judge: what a good answer is (at most 4000 characters).',
  threshold: 'A cell passes this scorer when its score is at least this (default 1; 0.5 for similarity and llm_judge).',
};

@InputType({ description: 'How each cell of a run is scored.' })
export class ScorerInput {
  @Field(() => ScorerType, { description: 'The kind of scorer.' })
  type!: keyof typeof ScorerType;

  @Field(() => String, { nullable: true, description: scorerFields.name })
  name?: string | null;

  @Field(() => String, { nullable: true, description: scorerFields.value })
  value?: string | null;

  // Input fields keep the property's name: snake_case here.
  @Field(() => String, { nullable: true, description: scorerFields.judge })
  judge_model_id?: string | null;

  @Field(() => String, { nullable: true, description: scorerFields.rubric })
  rubric?: string | null;

  @Field(() => Float, { nullable: true, description: scorerFields.threshold })
  threshold?: number | null;
}

@ObjectType({ description: 'A scorer of a run, with its defaults filled in.' })
export class Scorer {
  @Field(() => ScorerType, { description: 'The kind of scorer.' })
  type!: keyof typeof ScorerType;

  @Field({ description: scorerFields.name })
  name!: string;

  @Field(() => String, { nullable: true, description: scorerFields.value })
  value?: string | null;

  @Field(() => String, { name: 'judge_model_id', nullable: true, description: scorerFields.judge })
  judgeModelId?: string | null;

  @Field(() => String, { nullable: true, description: scorerFields.rubric })
  rubric?: string | null;

  @Field(() => Float, { description: scorerFields.threshold })
  threshold!: number;
}

@InputType({ description: 'A prompt version to evaluate.' })
export class EvaluationPromptInput {
  @Field({ description: "The prompt's name." })
  name!: string;

  @Field(() => Int, { nullable: true, description: 'The version; the newest when absent.' })
  version?: number | null;
}

@ObjectType({ description: "A run's progress." })
export class EvaluationProgress {
  @Field(() => Int, { description: 'Cells: cases x prompt versions x models.' })
  total!: number;

  @Field(() => Int, { description: 'Cells finished, failed ones included.' })
  completed!: number;

  @Field(() => Int, { description: 'Cells whose generation failed.' })
  failed!: number;
}

@ObjectType({ description: 'One prompt version x model of a run, summarized.' })
export class VariantSummary {
  @Field(() => PromptRef, { description: 'The prompt version.' })
  prompt!: PromptRef;

  @Field({ name: 'model_id', description: 'The model.' })
  modelId!: string;

  @Field(() => Int, { description: "The run's cases." })
  cases!: number;

  @Field(() => Int, { description: 'Cells finished, failed ones included.' })
  completed!: number;

  @Field(() => Int, { description: 'Cells whose generation failed.' })
  failed!: number;

  @Field(() => Int, { description: 'Cells that passed every scorer.' })
  passed!: number;

  @Field(() => Float, { name: 'pass_rate', nullable: true, description: 'passed / completed; null before any cell finished.' })
  passRate!: number | null;

  @Field(() => Float, { name: 'mean_score', nullable: true, description: 'Mean over completed cells of the mean of their scores.' })
  meanScore!: number | null;

  @Field(() => JSONObject, { description: 'Mean score per scorer name.' })
  scores!: Readonly<Record<string, number>>;

  @Field(() => Float, { name: 'mean_latency_ms', nullable: true, description: 'Mean latency of the generations that succeeded.' })
  meanLatencyMs!: number | null;

  @Field(() => Float, { name: 'p95_latency_ms', nullable: true, description: '95th percentile (nearest rank) of those latencies.' })
  p95LatencyMs!: number | null;

  @Field(() => Int, { name: 'total_tokens', description: 'Tokens of the candidate generations (judges not included).' })
  totalTokens!: number;

  @Field(() => Float, { name: 'cost_usd', description: 'Cost of the candidate generations in USD (judges not included).' })
  costUsd!: number;

  @Field(() => Float, { name: 'cost_per_pass_usd', nullable: true, description: 'cost_usd / passed; null when none passed.' })
  costPerPassUsd!: number | null;
}

@ObjectType({ description: 'The best variant of a run.' })
export class EvaluationBest {
  @Field(() => PromptRef, { description: 'The prompt version.' })
  prompt!: PromptRef;

  @Field({ name: 'model_id', description: 'The model.' })
  modelId!: string;
}

@ObjectType({ description: "An evaluation run: prompt versions x models x a dataset's cases, scored." })
export class Evaluation {
  @Field({ description: 'The run id.' })
  id!: string;

  @Field(() => String, { nullable: true, description: 'A name for people.' })
  name!: string | null;

  @Field(() => EvaluationStatus, { description: 'Where the run is.' })
  status!: keyof typeof EvaluationStatus;

  @Field({ name: 'dataset_id', description: 'The dataset whose cases the run uses.' })
  datasetId!: string;

  @Field(() => [PromptRef], { description: 'The prompt versions, resolved when the run started.' })
  prompts!: readonly PromptRef[];

  @Field(() => [String], { name: 'model_ids', description: 'The models.' })
  modelIds!: readonly string[];

  @Field(() => [Scorer], { description: 'The scorers, defaults filled in.' })
  scorers!: readonly Scorer[];

  @Field(() => EvaluationProgress, { description: 'Cells done so far.' })
  progress!: EvaluationProgress;

  @Field(() => [VariantSummary], { description: 'One per prompt version x model, best first (pass rate, then mean score, then cost).' })
  variants!: readonly VariantSummary[];

  @Field(() => EvaluationBest, { nullable: true, description: 'The best variant; null before any cell finished.' })
  best!: EvaluationBest | null;

  @Field(() => String, { nullable: true, description: 'Why the run failed (an error code, e.g. budget_exceeded).' })
  error!: string | null;

  @Field(() => DateTimeISO, { name: 'created_at', description: 'When it was started (UTC).' })
  createdAt!: Date;

  @Field(() => DateTimeISO, { name: 'started_at', nullable: true, description: 'When its first cell started.' })
  startedAt!: Date | null;

  @Field(() => DateTimeISO, { name: 'finished_at', nullable: true, description: 'When it ended.' })
  finishedAt!: Date | null;
}

@ObjectType({ description: 'A page of runs, newest first.' })
export class EvaluationPage {
  @Field(() => [Evaluation], { description: 'At most `limit` runs.' })
  evaluations!: readonly Evaluation[];

  @Field(() => String, { name: 'next_cursor', nullable: true, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor!: string | null;
}

@ObjectType({ description: "One scorer's verdict on a cell." })
export class CellScore {
  @Field({ description: "The scorer's name." })
  scorer!: string;

  @Field(() => Float, { description: '0 to 1.' })
  score!: number;

  @Field({ description: "Whether the score reached the scorer's threshold." })
  passed!: boolean;

  @Field(() => String, {
    nullable: true,
    description: 'Why the score is what it is, where that is not obvious (an unparseable judge grade).',
  })
  note!: string | null;
}

@ObjectType({ description: 'One finished cell of a run: a case x prompt version x model.' })
export class EvaluationResult {
  @Field(() => Int, { name: 'item_index', description: "The case's index in the dataset." })
  itemIndex!: number;

  @Field(() => PromptRef, { description: 'The prompt version.' })
  prompt!: PromptRef;

  @Field({ name: 'model_id', description: 'The model.' })
  modelId!: string;

  @Field(() => String, { name: 'generation_id', nullable: true, description: "The candidate generation's ledger row." })
  generationId!: string | null;

  @Field(() => String, { nullable: true, description: 'The generated text (null when it failed or content recording is off).' })
  text!: string | null;

  @Field(() => String, { nullable: true, description: "The case's expected answer." })
  expected!: string | null;

  @Field(() => [CellScore], { description: "One per scorer, in the run's order." })
  scores!: readonly CellScore[];

  @Field({ description: 'Whether every scorer passed.' })
  passed!: boolean;

  @Field(() => Int, { name: 'latency_ms', nullable: true, description: "The generation's latency." })
  latencyMs!: number | null;

  @Field(() => Float, { name: 'cost_usd', description: "The candidate generation's cost in USD." })
  costUsd!: number;

  @Field(() => String, { nullable: true, description: 'The error code when the generation failed.' })
  error!: string | null;
}

@ObjectType({ description: "A page of a run's finished cells, by case, then prompt version and model." })
export class EvaluationResultPage {
  @Field(() => [EvaluationResult], { description: 'At most `limit` cells.' })
  results!: readonly EvaluationResult[];

  @Field(() => String, { name: 'next_cursor', nullable: true, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor!: string | null;
}
