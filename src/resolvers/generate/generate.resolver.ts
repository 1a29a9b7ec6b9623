import { Args, Ctx, Mutation, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { GenerateArgs, GenerateBatchArgs, type GenerationOptionsArgs } from './generate.args';
import { BatchGenerateResponse, GenerateResponse } from './generate.type';

// type-graphql keeps snake_case names on args classes; the services speak camelCase.
const toOptions = (args: GenerationOptionsArgs) => ({
  modelId: args.model_id,
  maxTokens: args.max_tokens,
  temperature: args.temperature,
  topP: args.top_p,
  seed: args.seed,
});

@Resolver()
export class GenerateResolver {
  @Mutation(() => GenerateResponse, { description: 'Generates text for one prompt with a fine-tuned or commercial model.' })
  generate(@Args() args: GenerateArgs, @Ctx() context: RequestContext): Promise<GenerateResponse> {
    return context.services.generation.generate({ prompt: args.prompt, ...toOptions(args) }, context);
  }

  @Mutation(() => BatchGenerateResponse, {
    name: 'generate_batch',
    description: 'Generates text for several prompts at once; a failing prompt fails only its own result.',
  })
  generateBatch(@Args() args: GenerateBatchArgs, @Ctx() context: RequestContext): Promise<BatchGenerateResponse> {
    return context.services.generation.generateBatch({ prompts: args.prompts, ...toOptions(args) }, context);
  }
}
