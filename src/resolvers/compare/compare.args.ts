import { ArgsType, Field, Float, Int } from 'type-graphql';
import { COMPARE_LIMITS } from '../../services/compare.service';
import { generationLimits } from '../../services/generation-parameters';

const { maxTokens, temperature, topP, promptLength } = generationLimits;

// Argument names stay snake_case on the class: type-graphql keeps an args property's name in the schema.
@ArgsType()
export class CompareArgs {
  @Field({ description: `Input prompt, ${promptLength.min} to ${promptLength.max} characters.` })
  prompt!: string;

  @Field(() => [String], {
    description: `The models to run the prompt on, ${COMPARE_LIMITS.minModels} to ${COMPARE_LIMITS.maxModels} distinct ids; results come in this order.`,
  })
  model_ids!: string[];

  @Field(() => Int, {
    nullable: true,
    defaultValue: maxTokens.default,
    description: `Maximum number of tokens to generate, ${maxTokens.min} to ${maxTokens.max} and within each model's context.`,
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
}
