import { Args, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import type { RequestContext } from '../../context';
import { ApiError } from '../../errors/api-error';
import type { GenerationStream } from '../../pipeline/generation-pipeline';
import { GenerateArgs } from './generate.args';
import { GenerateStreamEvent, type StreamSourceItem } from './generate-stream.type';

@Resolver()
export class GenerateStreamResolver {
  @Subscription(() => GenerateStreamEvent, {
    name: 'generate_stream',
    description:
      'Generates text for one prompt as it is produced: events carry the next text, the last one the whole answer. ' +
      'Counts as `generate` for rate limits; closing the subscription cancels the upstream call.',
    subscribe: ({ args, context }: SubscribeResolverData<unknown, GenerateArgs, RequestContext>) => startStream(args, context),
  })
  generateStream(@Root() item: StreamSourceItem, @Args() _args: GenerateArgs): GenerateStreamEvent {
    // A failure after the first event ends the stream as a GraphQL error on its last event.
    if ('failure' in item) throw item.failure;
    return item;
  }
}

/** Admission and the upstream's answer happen here, so a refusal is the subscription's error, before any event. */
async function startStream(args: GenerateArgs, context: RequestContext): Promise<AsyncIterable<StreamSourceItem>> {
  const stream = await context.services.generation.stream(
    {
      prompt: args.prompt,
      modelId: args.model_id,
      maxTokens: args.max_tokens,
      temperature: args.temperature,
      topP: args.top_p,
      seed: args.seed,
      origin: { source: 'stream' },
    },
    context,
  );
  return sourceOf(stream);
}

/** Leaving this generator early (the client unsubscribed) returns the pipeline's stream: the upstream call stops. */
async function* sourceOf(stream: GenerationStream): AsyncGenerator<StreamSourceItem> {
  try {
    for await (const event of stream) {
      yield event.type === 'delta' ? { text: event.text, response: null } : { text: '', response: event.outcome };
    }
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    yield { failure: error };
  }
}
