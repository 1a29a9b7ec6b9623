import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';
import { GENERATION_STATUSES, LEDGER_SOURCES, USAGE_GROUP_BY } from '../../storage/ledger-types';
import { GenerationAttempt, GenerationMetrics, GenerationParameters, PromptRef } from '../generate/generate.type';
import { enumOf } from '../shared/enums';
import { DateTimeISO, SafeInt } from '../shared/scalars';

export const GenerationStatus = enumOf(GENERATION_STATUSES);
registerEnumType(GenerationStatus, {
  name: 'GenerationStatus',
  description: 'How a generation ended.',
  valuesConfig: {
    succeeded: { description: 'The provider answered.' },
    failed: { description: 'The provider failed, or the generation could not be recorded; `error` holds the code.' },
    cancelled: { description: 'The client went away, or the server stopped while it ran.' },
  },
});

export const GenerationSource = enumOf(LEDGER_SOURCES);
registerEnumType(GenerationSource, {
  name: 'GenerationSource',
  description: 'Which surface or run made a generation.',
  valuesConfig: {
    generate: { description: 'The generate operation (POST /api/v1/generate).' },
    batch: { description: 'One prompt of generate_batch.' },
    stream: { description: 'A streamed generation.' },
    compare: { description: 'One model of a side-by-side comparison.' },
    prompt: { description: 'A generation from a versioned prompt.' },
    evaluation: { description: 'A cell of an evaluation run.' },
    openai: { description: 'The OpenAI-compatible /v1 endpoint.' },
  },
});

export const UsageGroupBy = enumOf(USAGE_GROUP_BY);
registerEnumType(UsageGroupBy, {
  name: 'UsageGroupBy',
  description: 'How usage rows are grouped.',
  valuesConfig: {
    model: { description: 'By model id.' },
    caller: { description: "By the key's name." },
    team: { description: 'By team; callers without one are the group "".' },
    day: { description: 'By UTC day (YYYY-MM-DD).' },
  },
});

@ObjectType({ description: 'One row of the ledger. Every generation is recorded, whichever surface or run made it.' })
export class Generation {
  @Field({ description: 'The generation id (metadata.generation_id of the answer).' })
  id!: string;

  @Field({ name: 'request_id', description: 'The gateway request that made it (X-Request-Id).' })
  requestId!: string;

  @Field({ description: "The key's name, or 'anonymous' with authentication off." })
  caller!: string;

  @Field(() => String, { nullable: true, description: "The key's team; null without one." })
  team!: string | null;

  @Field(() => GenerationSource, { description: 'Which surface or run made it.' })
  source!: keyof typeof GenerationSource;

  @Field({ name: 'model_id', description: 'The model asked for.' })
  modelId!: string;

  @Field({ description: 'The provider (catalog endpoint) that served it.' })
  provider!: string;

  @Field({ name: 'upstream_model', description: 'The model the provider reports having used.' })
  upstreamModel!: string;

  @Field(() => GenerationStatus, { description: 'How it ended.' })
  status!: keyof typeof GenerationStatus;

  @Field(() => String, { nullable: true, description: 'The error code when not succeeded.' })
  error!: string | null;

  @Field(() => String, { name: 'finish_reason', nullable: true, description: 'Why the model stopped, when it answered.' })
  finishReason!: string | null;

  @Field(() => String, { nullable: true, description: 'Null when content recording is off (LEDGER_CONTENT=false).' })
  prompt!: string | null;

  @Field(() => String, { nullable: true, description: 'Null when content recording is off or nothing was generated.' })
  text!: string | null;

  @Field(() => GenerationParameters, { description: 'The generation parameters applied.' })
  parameters!: GenerationParameters;

  @Field(() => GenerationMetrics, { description: 'Latency and tokens (input tokens are counted for failed generations too).' })
  metrics!: GenerationMetrics;

  @Field(() => Float, { name: 'cost_usd', description: 'What was billed, in USD.' })
  costUsd!: number;

  @Field(() => PromptRef, { name: 'prompt_ref', nullable: true, description: 'The prompt template version, when one was used.' })
  promptRef!: PromptRef | null;

  @Field(() => String, { name: 'evaluation_id', nullable: true, description: 'The evaluation run that made it, if any.' })
  evaluationId!: string | null;

  @Field(() => DateTimeISO, { name: 'created_at', description: 'When the generation started (UTC).' })
  createdAt!: Date;

  @Field(() => [GenerationAttempt], { description: 'Every upstream call it took, in order (retries, replicas, fallbacks).' })
  attempts!: readonly GenerationAttempt[];
}

@ObjectType({ description: 'A page of the ledger, newest first.' })
export class GenerationPage {
  @Field(() => [Generation], { description: 'At most `limit` generations.' })
  generations!: readonly Generation[];

  @Field(() => String, { name: 'next_cursor', nullable: true, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor!: string | null;
}

@ObjectType({ description: 'Requests, tokens and cost of a set of generations.' })
export class UsageTotals {
  @Field(() => SafeInt, { description: 'Every finished generation, cancelled ones included.' })
  requests!: number;

  @Field(() => SafeInt, { description: 'Generations that succeeded.' })
  succeeded!: number;

  @Field(() => SafeInt, { description: 'Generations that failed.' })
  failed!: number;

  @Field(() => SafeInt, { name: 'input_tokens', description: 'Input tokens.' })
  inputTokens!: number;

  @Field(() => SafeInt, { name: 'output_tokens', description: 'Output tokens.' })
  outputTokens!: number;

  @Field(() => SafeInt, { name: 'total_tokens', description: 'Input plus output tokens.' })
  totalTokens!: number;

  @Field(() => Float, { name: 'cost_usd', description: 'What was billed, in USD (summed exactly, to 1e-10).' })
  costUsd!: number;
}

@ObjectType({ description: 'The usage of one group.' })
export class UsageRow extends UsageTotals {
  @Field({ description: 'The model id, caller, team ("" for none) or UTC day (YYYY-MM-DD).' })
  group!: string;
}

@ObjectType({ description: 'Requests, tokens and cost, grouped; the totals are exactly the sum of the rows.' })
export class UsageReport {
  @Field(() => UsageGroupBy, { name: 'group_by', description: 'How the rows are grouped.' })
  groupBy!: keyof typeof UsageGroupBy;

  @Field(() => DateTimeISO, { nullable: true, description: 'Inclusive.' })
  since!: Date | null;

  @Field(() => DateTimeISO, { nullable: true, description: 'Exclusive.' })
  until!: Date | null;

  @Field(() => [UsageRow], { description: 'Sorted by group.' })
  rows!: readonly UsageRow[];

  @Field(() => UsageTotals, { description: 'The sum of the rows.' })
  totals!: UsageTotals;
}
