import DataLoader from 'dataloader';
import { Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../context';
import type { Feedback as StoredFeedback } from '../../storage/feedback-types';
import { Generation } from '../ledger/ledger.type';
import { FeedbackArgs, FeedbackSummaryArgs, SubmitFeedbackArgs } from './feedback.args';
import { Feedback, FeedbackPage, FeedbackSummary } from './feedback.type';

/**
 * One loader per request, made on first use (a generate never pays for it): every Generation.feedback
 * field of one execution is answered by one query, whatever the page size.
 */
const feedbackLoaders = new WeakMap<RequestContext, DataLoader<string, readonly StoredFeedback[]>>();

function feedbackLoader(context: RequestContext): DataLoader<string, readonly StoredFeedback[]> {
  let loader = feedbackLoaders.get(context);
  if (!loader) {
    loader = new DataLoader(async (generationIds: readonly string[]) => {
      const byGeneration = await context.services.feedback.forGenerations(generationIds);
      return generationIds.map((id) => byGeneration.get(id) ?? []);
    });
    feedbackLoaders.set(context, loader);
  }
  return loader;
}

@Resolver()
export class FeedbackResolver {
  @Mutation(() => Feedback, {
    description: 'Rates, comments on or corrects a generation (members: their own). At least one of score, thumbs, comment, correction.',
  })
  submit_feedback(@Args() args: SubmitFeedbackArgs, @Ctx() context: RequestContext): Promise<Feedback> {
    return context.services.feedback.submit(context.caller, {
      generationId: args.generation_id,
      score: args.score,
      thumbs: args.thumbs,
      comment: args.comment,
      correction: args.correction,
      tags: args.tags,
    });
  }

  @Query(() => FeedbackPage, { description: 'Feedback, newest first (members: the feedback on their own generations).' })
  feedback(@Args() args: FeedbackArgs, @Ctx() context: RequestContext): Promise<FeedbackPage> {
    return context.services.feedback.list(context.caller, {
      generationId: args.generation_id,
      modelId: args.model_id,
      since: args.since,
      until: args.until,
      limit: args.limit,
      cursor: args.cursor,
    });
  }

  @Query(() => FeedbackSummary, { description: 'Feedback counts, mean score, thumbs and corrections per model or prompt version.' })
  async feedback_summary(@Args() args: FeedbackSummaryArgs, @Ctx() context: RequestContext): Promise<FeedbackSummary> {
    const groupBy = args.group_by ?? 'model';
    const rows = await context.services.feedback.summary(context.caller, { groupBy, since: args.since, until: args.until });
    return { groupBy, rows };
  }
}

@Resolver(() => Generation)
export class GenerationFeedbackResolver {
  @FieldResolver(() => [Feedback], { description: 'The feedback given on this generation, newest first.' })
  feedback(@Root() generation: Generation, @Ctx() context: RequestContext): Promise<readonly StoredFeedback[]> {
    return feedbackLoader(context).load(generation.id);
  }
}
