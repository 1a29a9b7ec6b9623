import { Args, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import type { RequestContext } from '../../context';
import { ApiError, subscriptionNotSubscribed } from '../../errors/api-error';
import type { GenerationStream } from '../../pipeline/generation-pipeline';
import { GenerateArgs } from './generate.args';
import { upstreamErrorCodes } from './generate.resolver';
import { GenerateStreamEvent, type StreamSourceItem } from './generate-stream.type';

@Resolver()
export class GenerateStreamResolver {
  @Subscription(() => GenerateStreamEvent, {
    name: 'generate_stream',
    description:
      'Generates text for one prompt as it is produced: events carry the next text, the last one the whole answer. ' +
      'Counts as `generate` for rate limits; closing the subscription cancels the upstream call. ' +
      upstreamErrorCodes,
    subscribe: ({ args, context }: SubscribeResolverData<unknown, GenerateArgs, RequestContext>) => startStream(args, context),
  })
  generateStream(@Root() item: StreamSourceItem | undefined, @Args() _args: GenerateArgs): GenerateStreamEvent {
    // No event: the operation was executed as a query (POST /graphql), not subscribed to.
    if (item === undefined) throw subscriptionNotSubscribed();
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

/**
 * The stream's events as the subscription's source. Written out rather than as an async generator: a
 * generator that has not started ignores `return()`, and a client may unsubscribe before the first
 * event; here `return()` always reaches the pipeline's stream, so the upstream call stops.
 */
function sourceOf(stream: GenerationStream): AsyncIterableIterator<StreamSourceItem> {
  const events = stream[Symbol.asyncIterator]();
  let ended = false;
  const source: AsyncIterableIterator<StreamSourceItem> = {
    async next() {
      if (ended) return { done: true, value: undefined };
      try {
        const next = await events.next();
        if (next.done) {
          ended = true;
          return { done: true, value: undefined };
        }
        const event = next.value;
        return {
          done: false,
          value: event.type === 'delta' ? { text: event.text, response: null } : { text: '', response: event.outcome },
        };
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        // The last item: its resolver raises it, so it reaches the client as the stream's error.
        ended = true;
        return { done: false, value: { failure: error } };
      }
    },
    async return() {
      ended = true;
      await events.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => source,
  };
  return source;
}
