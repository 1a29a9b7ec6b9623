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

/** What an upstream failure answers, in `extensions.code`, after the retries, replicas and fallbacks LLMOP tries. */
export const upstreamErrorCodes =
  'Upstream failures answer, in extensions.code: upstream_rate_limited (429, with Retry-After), upstream_error (502: 5xx, ' +
  "malformed or broken answers, refused connections or credentials), model_unavailable (503: every endpoint's circuit " +
  'breaker open or a full queue, with Retry-After), upstream_timeout (504: the deadline passed), validation_error (400: the ' +
  'provider refused the request, its reason in details); generation_error (500) for in-process inference failures.';

@Resolver()
export class GenerateResolver {
  @Mutation(() => GenerateResponse, {
    description: `Generates text for one prompt with a fine-tuned or commercial model. ${upstreamErrorCodes}`,
  })
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
