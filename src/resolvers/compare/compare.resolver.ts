import { Args, Ctx, Mutation, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { CompareArgs } from './compare.args';
import { CompareResponse } from './compare.type';

@Resolver()
export class CompareResolver {
  @Mutation(() => CompareResponse, {
    description:
      'Runs one prompt on 2 to 10 models at once (about as long as the slowest takes); an unknown model refuses the whole request, a failing one only its own result.',
  })
  compare(@Args() args: CompareArgs, @Ctx() context: RequestContext): Promise<CompareResponse> {
    return context.services.compare.compare(
      { prompt: args.prompt, modelIds: args.model_ids, maxTokens: args.max_tokens, temperature: args.temperature, topP: args.top_p },
      context,
    );
  }
}
