import { Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { GenerateResponse } from '../generate/generate.type';
import { CreatePromptVersionArgs, GenerateFromPromptArgs, PromptNameArgs, PromptVersionArgs } from './prompt.args';
import { Prompt, PromptList, PromptVersion } from './prompt.type';

@Resolver()
export class PromptResolver {
  @Query(() => PromptList, { description: 'The latest version of every prompt (prompts are shared by every caller).' })
  async prompts(@Ctx() context: RequestContext): Promise<PromptList> {
    return { prompts: await context.services.prompts.list() };
  }

  @Query(() => Prompt, { description: 'Every version of one prompt, newest first.' })
  async prompt(@Args() args: PromptNameArgs, @Ctx() context: RequestContext): Promise<Prompt> {
    return { name: args.name, versions: await context.services.prompts.versions(args.name) };
  }

  @Query(() => PromptVersion, { description: 'One version of a prompt.' })
  prompt_version(@Args() args: PromptVersionArgs, @Ctx() context: RequestContext): Promise<PromptVersion> {
    return context.services.prompts.version(args.name, args.version);
  }

  @Mutation(() => PromptVersion, { description: 'Saves a prompt template as the next version of its name (1 for a new name).' })
  create_prompt_version(@Args() args: CreatePromptVersionArgs, @Ctx() context: RequestContext): Promise<PromptVersion> {
    return context.services.prompts.createVersion({
      name: args.name,
      template: args.template,
      description: args.description,
      modelId: args.model_id,
      parameters: args.parameters && {
        maxTokens: args.parameters.max_tokens,
        temperature: args.parameters.temperature,
        topP: args.parameters.top_p,
      },
    });
  }

  @Mutation(() => GenerateResponse, {
    description:
      "Fills a prompt's template (the newest version unless `version` is given) and generates: the version's model and " +
      'parameters unless the request overrides them. `prompt` is the filled template; metadata.prompt_ref names the version.',
  })
  generate_from_prompt(@Args() args: GenerateFromPromptArgs, @Ctx() context: RequestContext): Promise<GenerateResponse> {
    return context.services.prompts.generate(
      {
        name: args.name,
        version: args.version,
        variables: args.variables,
        modelId: args.model_id,
        maxTokens: args.max_tokens,
        temperature: args.temperature,
        topP: args.top_p,
      },
      context,
    );
  }
}
