import { Field, Float, ObjectType } from 'type-graphql';
import { DateTimeISO } from '../shared/scalars';
import { GenerationMetrics } from '../generate/generate.type';

@ObjectType({ description: "One model's answer in a comparison; a failure affects only its own result." })
export class CompareResult {
  @Field({ name: 'model_id', description: 'The model.' })
  modelId!: string;

  @Field({ description: 'Whether this model generated an answer.' })
  success!: boolean;

  @Field(() => String, { nullable: true, description: 'Generated text; null when this model failed.' })
  text!: string | null;

  @Field(() => String, { nullable: true, description: 'Why this model failed; null on success.' })
  error!: string | null;

  @Field(() => GenerationMetrics, { description: 'Latency and tokens of the generation; zeros when this model failed.' })
  metrics!: GenerationMetrics;

  @Field(() => Float, { name: 'cost_usd', description: 'Cost of the generation in USD; 0 when this model failed.' })
  costUsd!: number;

  @Field(() => String, {
    name: 'generation_id',
    nullable: true,
    description: "The generation's row in the ledger, failed ones included; null when none was started (refused before, e.g. by a budget).",
  })
  generationId!: string | null;
}

@ObjectType({ description: 'One prompt on several models side by side, with the fastest and the cheapest.' })
export class CompareResponse {
  @Field({ description: 'The prompt.' })
  prompt!: string;

  @Field(() => [CompareResult], { description: 'One result per model, in the order asked.' })
  results!: readonly CompareResult[];

  @Field(() => String, { name: 'fastest_model_id', nullable: true, description: 'Lowest latency among the successful results.' })
  fastestModelId!: string | null;

  @Field(() => String, { name: 'cheapest_model_id', nullable: true, description: 'Lowest cost among the successful results.' })
  cheapestModelId!: string | null;

  @Field(() => DateTimeISO, { description: 'When the comparison finished (ISO 8601).' })
  timestamp!: Date;
}
