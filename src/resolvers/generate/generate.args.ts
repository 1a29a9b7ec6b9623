import { ArgsType, Field, Float, Int } from 'type-graphql';
import { generationLimits } from '../../services/generation-parameters';

const { maxTokens, temperature, topP, promptLength, batchSize } = generationLimits;

// Argument names stay snake_case on the class: type-graphql keeps an args property's name in the schema.
@ArgsType()
export class GenerationOptionsArgs {
  @Field({ description: 'Model identifier to use for generation.' })
  model_id!: string;

  @Field(() => Int, {
    nullable: true,
    defaultValue: maxTokens.default,
    description: `Maximum number of tokens to generate, ${maxTokens.min} to ${maxTokens.max} and within the model's context.`,
  })
  max_tokens?: number | null;

  @Field(() => Float, {
    nullable: true,
    defaultValue: temperature.default,
    description: `Sampling temperature, ${temperature.min} to ${temperature.max}.`,
  })
  temperature?: number | null;

  @Field(() => Float, {
    nullable: true,
    defaultValue: topP.default,
    description: `Nucleus sampling parameter, ${topP.min} to ${topP.max}.`,
  })
  top_p?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Sampling seed for reproducible output where the provider supports it (local models, OpenAI).',
  })
  seed?: number | null;
}

@ArgsType()
export class GenerateArgs extends GenerationOptionsArgs {
  @Field({ description: `Input prompt, ${promptLength.min} to ${promptLength.max} characters.` })
  prompt!: string;
}

@ArgsType()
export class GenerateBatchArgs extends GenerationOptionsArgs {
  @Field(() => [String], {
    description: `Prompts to generate for, ${batchSize.min} to ${batchSize.max} items of ${promptLength.min} to ${promptLength.max} characters.`,
  })
  prompts!: string[];
}
