import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeISO } from '../shared/scalars';

export const FinishReason = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content_filter',
  tool_calls: 'tool_calls',
  error: 'error',
  other: 'other',
} as const;
registerEnumType(FinishReason, {
  name: 'FinishReason',
  description: 'Why the model stopped generating.',
  valuesConfig: {
    stop: { description: 'The model finished on its own or hit a stop sequence.' },
    length: { description: 'max_tokens was reached.' },
    content_filter: { description: 'The provider filtered the output.' },
    tool_calls: { description: 'The model called a tool.' },
    error: { description: 'The model failed while generating.' },
    other: { description: 'A reason the gateway does not know.' },
  },
});

export const TokenSource = { upstream: 'upstream', tokenizer: 'tokenizer' } as const;
registerEnumType(TokenSource, {
  name: 'TokenSource',
  description: 'Where token counts came from.',
  valuesConfig: {
    upstream: { description: 'The provider reported usage.' },
    tokenizer: { description: "The gateway counted with the model family's tokenizer." },
  },
});

@ObjectType({ description: 'The generation parameters applied, defaults included.' })
export class GenerationParameters {
  @Field(() => Int, { name: 'max_tokens', description: 'Maximum number of tokens to generate.' })
  maxTokens!: number;

  @Field(() => Float, { description: 'Sampling temperature.' })
  temperature!: number;

  @Field(() => Float, { name: 'top_p', description: 'Nucleus sampling parameter.' })
  topP!: number;
}

@ObjectType({ description: 'Cost of a call in US dollars, from the catalog price of the model.' })
export class CostBreakdown {
  @Field(() => Float, { description: 'USD for input tokens.' })
  input!: number;

  @Field(() => Float, { description: 'USD for output tokens.' })
  output!: number;

  @Field(() => Float, { description: 'USD in total.' })
  total!: number;
}

@ObjectType({ description: 'Latency and token counts of one generation.' })
export class GenerationMetrics {
  @Field(() => Int, { name: 'latency_ms', description: 'Generation latency in milliseconds, as the gateway saw it.' })
  latencyMs!: number;

  @Field(() => Int, { name: 'input_tokens', description: 'Number of input tokens.' })
  inputTokens!: number;

  @Field(() => Int, { name: 'output_tokens', description: 'Number of output tokens.' })
  outputTokens!: number;

  @Field(() => Int, { name: 'total_tokens', description: 'Total tokens (input + output).' })
  totalTokens!: number;
}

@ObjectType({ description: 'A prompt template version a generation used.' })
export class PromptRef {
  @Field({ description: "The prompt's name." })
  name!: string;

  @Field(() => Int, { description: 'The version used.' })
  version!: number;
}

@ObjectType({ description: 'One upstream call of a generation: a retry, another replica, or a fallback model each add one.' })
export class GenerationAttempt {
  @Field({ name: 'model_id', description: 'The model tried: the one asked for, or one of its fallbacks.' })
  modelId!: string;

  @Field({ description: 'The endpoint (provider) that was called.' })
  provider!: string;

  @Field(() => String, { nullable: true, description: "The failed attempt's error code; null for the attempt that served." })
  error!: string | null;

  @Field(() => Int, { name: 'latency_ms', nullable: true, description: 'How long the attempt took, in milliseconds.' })
  latencyMs!: number | null;
}

@ObjectType({ description: 'Facts about how a generation was served.' })
export class GenerationMetadata {
  @Field({ name: 'generation_id', description: "The generation's row in the ledger (GET /api/v1/generations/{generation_id})." })
  generationId!: string;

  @Field(() => FinishReason, { name: 'finish_reason', description: 'Why the model stopped.' })
  finishReason!: keyof typeof FinishReason;

  @Field({ description: 'Provider that served the request.' })
  provider!: string;

  @Field({ name: 'upstream_model', description: 'The model the provider reports having used.' })
  upstreamModel!: string;

  @Field({ name: 'request_id', description: 'The gateway request id (also in the X-Request-Id header).' })
  requestId!: string;

  @Field(() => String, { name: 'upstream_request_id', nullable: true, description: "The provider's request id, when it sent one." })
  upstreamRequestId?: string;

  @Field(() => TokenSource, { name: 'token_source', description: 'Where the token counts came from.' })
  tokenSource!: keyof typeof TokenSource;

  @Field(() => CostBreakdown, { name: 'cost_usd', description: 'Cost of the call in USD.' })
  costUsd!: CostBreakdown;

  @Field(() => PromptRef, { name: 'prompt_ref', nullable: true, description: 'The prompt template version the prompt was filled from.' })
  promptRef?: PromptRef;

  @Field(() => [GenerationAttempt], { description: 'Every upstream call it took, in order; the last one served.' })
  attempts!: readonly GenerationAttempt[];
}

@ObjectType({ description: 'Generated text with its parameters, metrics and metadata.' })
export class GenerateResponse {
  @Field({ description: 'Generated text.' })
  text!: string;

  @Field({ name: 'model_id', description: 'Model used for generation.' })
  modelId!: string;

  @Field({ description: 'Original input prompt.' })
  prompt!: string;

  @Field(() => GenerationParameters, { description: 'Generation parameters used.' })
  parameters!: GenerationParameters;

  @Field(() => GenerationMetrics, { description: 'Generation metrics.' })
  metrics!: GenerationMetrics;

  @Field(() => GenerationMetadata, { description: 'Additional metadata from the model and the gateway.' })
  metadata!: GenerationMetadata;

  @Field(() => DateTimeISO, { description: 'When the generation finished (ISO 8601).' })
  timestamp!: Date;
}

@ObjectType({
  description: "Metadata of one prompt of a batch: a failed prompt's holds only its generation_id, the rest are null.",
})
export class BatchItemMetadata {
  @Field({ name: 'generation_id', description: "The prompt's row in the ledger, failed prompts included." })
  generationId!: string;

  @Field(() => FinishReason, { name: 'finish_reason', nullable: true, description: 'Why the model stopped.' })
  finishReason?: keyof typeof FinishReason;

  @Field(() => String, { nullable: true, description: 'Provider that served the request.' })
  provider?: string;

  @Field(() => String, { name: 'upstream_model', nullable: true, description: 'The model the provider reports having used.' })
  upstreamModel?: string;

  @Field(() => String, { name: 'request_id', nullable: true, description: 'The gateway request id (also in the X-Request-Id header).' })
  requestId?: string;

  @Field(() => String, { name: 'upstream_request_id', nullable: true, description: "The provider's request id, when it sent one." })
  upstreamRequestId?: string;

  @Field(() => TokenSource, { name: 'token_source', nullable: true, description: 'Where the token counts came from.' })
  tokenSource?: keyof typeof TokenSource;

  @Field(() => CostBreakdown, { name: 'cost_usd', nullable: true, description: 'Cost of the call in USD.' })
  costUsd?: CostBreakdown;

  @Field(() => Int, { name: 'latency_ms', nullable: true, description: 'Time this prompt spent at the provider, in milliseconds.' })
  latencyMs?: number;

  @Field(() => Int, { name: 'input_tokens', nullable: true, description: 'Number of input tokens.' })
  inputTokens?: number;

  @Field(() => Int, { name: 'output_tokens', nullable: true, description: 'Number of output tokens.' })
  outputTokens?: number;

  @Field(() => Int, { name: 'total_tokens', nullable: true, description: 'Total tokens (input + output).' })
  totalTokens?: number;

  @Field(() => [GenerationAttempt], { nullable: true, description: 'Every upstream call it took, in order; the last one served.' })
  attempts?: readonly GenerationAttempt[];
}

@ObjectType({ description: 'The outcome of one prompt of a batch; a failure affects only its own item.' })
export class BatchGenerateResult {
  @Field(() => Int, { description: 'Position of the prompt in the request.' })
  index!: number;

  @Field({ description: 'The prompt.' })
  prompt!: string;

  @Field(() => String, { nullable: true, description: 'Generated text; null when this prompt failed.' })
  text!: string | null;

  @Field({ description: 'Whether this prompt was generated.' })
  success!: boolean;

  @Field(() => String, { nullable: true, description: 'Why this prompt failed; null on success.' })
  error!: string | null;

  @Field(() => BatchItemMetadata, { description: 'Metadata of the generation; only generation_id when it failed.' })
  metadata!: BatchItemMetadata;
}

@ObjectType({ description: 'Aggregate figures of a batch.' })
export class BatchGenerateMetrics {
  @Field(() => Int, { name: 'total_latency_ms', description: 'Wall-clock time of the whole batch in milliseconds.' })
  totalLatencyMs!: number;

  @Field(() => Int, { name: 'successful_generations', description: 'Prompts generated successfully.' })
  successfulGenerations!: number;

  @Field(() => Int, { name: 'failed_generations', description: 'Prompts that failed.' })
  failedGenerations!: number;

  @Field(() => Int, { name: 'average_latency_ms', description: 'Mean provider latency of the successful prompts.' })
  averageLatencyMs!: number;

  @Field(() => Int, { name: 'input_tokens', description: 'Input tokens of the successful prompts.' })
  inputTokens!: number;

  @Field(() => Int, { name: 'output_tokens', description: 'Output tokens of the successful prompts.' })
  outputTokens!: number;

  @Field(() => Int, { name: 'total_tokens', description: 'Total tokens of the successful prompts.' })
  totalTokens!: number;

  @Field(() => CostBreakdown, { name: 'cost_usd', description: 'Cost of the batch in USD.' })
  costUsd!: CostBreakdown;
}

@ObjectType({ description: 'Results of a batch generation, in prompt order.' })
export class BatchGenerateResponse {
  @Field(() => [BatchGenerateResult], { description: 'One result per prompt, in request order.' })
  results!: readonly BatchGenerateResult[];

  @Field({ name: 'model_id', description: 'Model used for generation.' })
  modelId!: string;

  @Field(() => GenerationParameters, { description: 'Generation parameters used.' })
  parameters!: GenerationParameters;

  @Field(() => BatchGenerateMetrics, { description: 'Aggregate metrics of the batch.' })
  metrics!: BatchGenerateMetrics;

  @Field(() => DateTimeISO, { description: 'When the batch finished (ISO 8601).' })
  timestamp!: Date;
}
