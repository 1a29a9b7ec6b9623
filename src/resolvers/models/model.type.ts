import { Directive, Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeISO } from '../shared/scalars';

export const ModelStatus = { available: 'available', unavailable: 'unavailable' } as const;
registerEnumType(ModelStatus, {
  name: 'ModelStatus',
  description: 'Whether a model can serve generation requests now.',
  valuesConfig: {
    available: { description: 'The model can generate.' },
    unavailable: { description: 'The model is known but cannot generate now; see status_reason.' },
  },
});

export const ModelApi = { chat: 'chat', completion: 'completion' } as const;
registerEnumType(ModelApi, {
  name: 'ModelApi',
  description: 'How the gateway sends prompts to the model.',
  valuesConfig: {
    chat: { description: 'As one user message to the chat completions endpoint.' },
    completion: { description: 'As a prompt to the legacy completions endpoint.' },
  },
});

@ObjectType({ description: 'Price of a model in US dollars per million tokens.' })
export class ModelPricing {
  @Field(() => Float, { name: 'input_per_million', description: 'USD per million input (prompt) tokens.' })
  inputPerMillion!: number;

  @Field(() => Float, { name: 'output_per_million', description: 'USD per million output (generated) tokens.' })
  outputPerMillion!: number;
}

@ObjectType({ description: "One evaluation figure from a fine-tune's model card." })
export class EvaluationMetric {
  @Field({ description: 'Metric name, such as accuracy or rougeL.' })
  metric!: string;

  @Field(() => Float, { description: 'Metric value.' })
  value!: number;
}

@ObjectType({ description: 'How a fine-tuned model was made, from its model card.' })
export class FineTuningInfo {
  @Field(() => String, { nullable: true, description: 'The dataset the model was fine-tuned on.' })
  dataset?: string;

  @Field(() => String, { name: 'created_at', nullable: true, description: 'When the fine-tune was made (as the card states it).' })
  createdAt?: string;

  @Field(() => [EvaluationMetric], { description: 'Evaluation results reported in the card.' })
  evaluation!: readonly EvaluationMetric[];
}

@Directive('@key(fields: "id")')
@ObjectType({ description: 'A language model the gateway can route to; a federation entity keyed by id.' })
export class Model {
  @Field({ description: 'Unique model identifier, used as model_id in generation requests.' })
  id!: string;

  @Field({ description: 'Human readable model name.' })
  name!: string;

  @Field(() => String, { description: 'Model type: "commercial" or "fine-tuned".' })
  type!: string;

  @Field({ description: 'Provider serving the model: openai, local (in-process llama.cpp), or the name of an OpenAI-compatible endpoint.' })
  provider!: string;

  @Field(() => String, { nullable: true, description: 'Model description.' })
  description?: string;

  @Field(() => ModelStatus, { description: 'Model availability status.' })
  status!: keyof typeof ModelStatus;

  @Field(() => String, { name: 'status_reason', nullable: true, description: 'Why the model is unavailable.' })
  statusReason?: string;

  @Field(() => [String], { description: 'Model capabilities, such as text-generation and chat.' })
  capabilities!: readonly string[];

  @Field(() => Int, { name: 'context_length', nullable: true, description: 'Maximum context length in tokens.' })
  contextLength?: number;

  @Field(() => ModelApi, { description: 'How prompts are sent to the model.' })
  api!: keyof typeof ModelApi;

  @Field(() => String, { name: 'base_model', nullable: true, description: 'The model a fine-tune was trained from.' })
  baseModel?: string;

  @Field(() => ModelPricing, { nullable: true, description: 'Price per million tokens; null when the model is not priced.' })
  pricing?: ModelPricing;

  @Field(() => FineTuningInfo, { name: 'fine_tuning', nullable: true, description: 'Fine-tuning facts from the model card.' })
  fineTuning?: FineTuningInfo;
}

@ObjectType({ description: 'Every model the gateway knows, available or not.' })
export class ModelsListResponse {
  @Field(() => [Model], { description: 'The models.' })
  models!: readonly Model[];

  @Field(() => Int, { description: 'Total number of models.' })
  count!: number;

  @Field(() => DateTimeISO, { description: 'When the list was produced (ISO 8601).' })
  timestamp!: Date;
}

@ObjectType({ description: 'One model, looked up by id.' })
export class ModelInfoResponse {
  @Field(() => Model, { description: 'The model.' })
  model!: Model;

  @Field(() => DateTimeISO, { description: 'When the answer was produced (ISO 8601).' })
  timestamp!: Date;
}
