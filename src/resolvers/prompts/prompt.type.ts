import { Field, Float, Int, ObjectType } from 'type-graphql';
import { DateTimeISO } from '../shared/scalars';

@ObjectType({ description: "A prompt version's default generation parameters; a request's own values win." })
export class PromptParameters {
  @Field(() => Int, { name: 'max_tokens', nullable: true, description: 'Maximum number of tokens to generate.' })
  maxTokens?: number;

  @Field(() => Float, { nullable: true, description: 'Sampling temperature.' })
  temperature?: number;

  @Field(() => Float, { name: 'top_p', nullable: true, description: 'Nucleus sampling parameter.' })
  topP?: number;
}

@ObjectType({ description: 'One immutable version of a prompt template.' })
export class PromptVersion {
  @Field({ description: "The prompt's name." })
  name!: string;

  @Field(() => Int, { description: 'The version: 1, 2, 3... in the order they were saved.' })
  version!: number;

  @Field({ description: 'Text with {{variable}} placeholders.' })
  template!: string;

  @Field(() => [String], { description: 'The placeholders, in order of first use.' })
  variables!: readonly string[];

  @Field(() => String, { nullable: true, description: 'What the version is for.' })
  description!: string | null;

  @Field(() => String, { name: 'model_id', nullable: true, description: 'The default model.' })
  modelId!: string | null;

  @Field(() => PromptParameters, { nullable: true, description: 'Default generation parameters; null when the version sets none.' })
  parameters!: PromptParameters | null;

  @Field(() => DateTimeISO, { name: 'created_at', description: 'When the version was saved (UTC).' })
  createdAt!: Date;
}

@ObjectType({ description: 'The latest version of every prompt.' })
export class PromptList {
  @Field(() => [PromptVersion], { description: 'One entry per prompt: its newest version, the most recently changed prompt first.' })
  prompts!: readonly PromptVersion[];
}

@ObjectType({ description: 'A prompt with all its versions.' })
export class Prompt {
  @Field({ description: "The prompt's name." })
  name!: string;

  @Field(() => [PromptVersion], { description: 'Every version, newest first.' })
  versions!: readonly PromptVersion[];
}
