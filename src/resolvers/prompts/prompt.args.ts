import { JSONObjectResolver } from 'graphql-scalars';
import { ArgsType, Field, Float, InputType, Int } from 'type-graphql';
import { generationLimits } from '../../services/generation-parameters';
import { PROMPT_LIMITS } from '../../services/prompt.service';

const { maxTokens, temperature, topP } = generationLimits;

// Argument names stay snake_case on the classes: type-graphql keeps an args property's name in the schema.
// No defaults on the parameters: a value left out falls back to the prompt version's, then the gateway's.

@InputType({ description: "Default generation parameters of a prompt version; a request's own values win." })
export class PromptParametersInput {
  @Field(() => Int, { nullable: true, description: `Maximum number of tokens to generate, ${maxTokens.min} to ${maxTokens.max}.` })
  max_tokens?: number | null;

  @Field(() => Float, { nullable: true, description: `Sampling temperature, ${temperature.min} to ${temperature.max}.` })
  temperature?: number | null;

  @Field(() => Float, { nullable: true, description: `Nucleus sampling parameter, ${topP.min} to ${topP.max}.` })
  top_p?: number | null;
}

@ArgsType()
export class PromptNameArgs {
  @Field({ description: "The prompt's name." })
  name!: string;
}

@ArgsType()
export class PromptVersionArgs extends PromptNameArgs {
  @Field(() => Int, { description: 'The version, 1 or more.' })
  version!: number;
}

@ArgsType()
export class CreatePromptVersionArgs {
  @Field({ description: `1 to 64 characters matching ${PROMPT_LIMITS.namePattern.source}; a new name starts at version 1.` })
  name!: string;

  @Field({ description: `Text with {{variable}} placeholders, 1 to ${PROMPT_LIMITS.templateMaxLength} characters.` })
  template!: string;

  @Field(() => String, {
    nullable: true,
    description: `What the version is for, at most ${PROMPT_LIMITS.descriptionMaxLength} characters.`,
  })
  description?: string | null;

  @Field(() => String, { nullable: true, description: 'The default model; it must be in the catalog.' })
  model_id?: string | null;

  @Field(() => PromptParametersInput, { nullable: true, description: 'Default generation parameters.' })
  parameters?: PromptParametersInput | null;
}

@ArgsType()
export class GenerateFromPromptArgs extends PromptNameArgs {
  @Field(() => Int, { nullable: true, description: 'The version to fill; the newest when left out.' })
  version?: number | null;

  @Field(() => JSONObjectResolver, {
    description: "Values of the template's placeholders, each a string; names the template does not use are ignored.",
  })
  variables!: Record<string, unknown>;

  @Field(() => String, { nullable: true, description: "Overrides the version's model." })
  model_id?: string | null;

  @Field(() => Int, {
    nullable: true,
    description: `Overrides the version's max_tokens, ${maxTokens.min} to ${maxTokens.max} (default ${maxTokens.default}).`,
  })
  max_tokens?: number | null;

  @Field(() => Float, {
    nullable: true,
    description: `Overrides the version's temperature, ${temperature.min} to ${temperature.max} (default ${temperature.default}).`,
  })
  temperature?: number | null;

  @Field(() => Float, {
    nullable: true,
    description: `Overrides the version's top_p, ${topP.min} to ${topP.max} (default ${topP.default}).`,
  })
  top_p?: number | null;
}
