import { Args, Ctx, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import type { RequestContext } from '../../context';
import { type ApiError, shuttingDown, subscriptionNotSubscribed } from '../../errors/api-error';
import type { EvaluationView } from '../../services/evaluation.service';
import { costUnitsToUsd } from '../../storage/cost-units';
import {
  type EvaluationResult as StoredResult,
  type Evaluation as StoredEvaluation,
  UNFINISHED_STATUSES,
} from '../../storage/evaluation-types';
import { EvaluationIdArgs, EvaluationResultsArgs, EvaluationsArgs, StartEvaluationArgs } from './evaluation.args';
import { Evaluation, EvaluationPage, EvaluationResult, EvaluationResultPage } from './evaluation.type';

@Resolver()
export class EvaluationResolver {
  @Mutation(() => Evaluation, {
    description:
      "Starts a run over prompt versions x models x a dataset's cases; answered at once, queued. Cells are charged to budgets, not rate limited.",
  })
  async start_evaluation(@Args() args: StartEvaluationArgs, @Ctx() context: RequestContext): Promise<Evaluation> {
    const run = await context.services.evaluations.start(
      {
        name: args.name,
        datasetId: args.dataset_id,
        prompts: args.prompts,
        modelIds: args.model_ids,
        scorers: args.scorers.map(({ judge_model_id, ...scorer }) => ({ ...scorer, judgeModelId: judge_model_id })),
        maxTokens: args.max_tokens,
        temperature: args.temperature,
        topP: args.top_p,
      },
      context.caller,
    );
    return toEvaluation(run);
  }

  @Mutation(() => Evaluation, { description: 'Stops a queued or running run; finished cells are kept.' })
  async cancel_evaluation(@Args() args: EvaluationIdArgs, @Ctx() context: RequestContext): Promise<Evaluation> {
    return toEvaluation(await context.services.evaluations.cancel(args.evaluation_id, context.caller));
  }

  @Query(() => EvaluationPage, { description: 'Evaluation runs, newest first (members: their own).' })
  async evaluations(@Args() args: EvaluationsArgs, @Ctx() context: RequestContext): Promise<EvaluationPage> {
    const page = await context.services.evaluations.list({ limit: args.limit, cursor: args.cursor }, context.caller);
    return { evaluations: page.evaluations.map(toEvaluation), nextCursor: page.nextCursor };
  }

  @Query(() => Evaluation, { description: 'A run with its progress and its variants, best first.' })
  async evaluation(@Args() args: EvaluationIdArgs, @Ctx() context: RequestContext): Promise<Evaluation> {
    return toEvaluation(await context.services.evaluations.get(args.evaluation_id, context.caller));
  }

  @Subscription(() => Evaluation, {
    name: 'evaluation_progress',
    description:
      'The run now, then again each time its status or progress changes; ends after the run ends (succeeded, failed or cancelled).',
    subscribe: async ({ args, context }: SubscribeResolverData<unknown, EvaluationIdArgs, RequestContext>) => {
      const views = await context.services.evaluations.watch(args.evaluation_id, context.caller, context.signal);
      return progressOf(views, context.signal);
    },
  })
  evaluationProgress(@Root() item: Evaluation | { readonly failure: ApiError } | undefined, @Args() _args: EvaluationIdArgs): Evaluation {
    // No event: the operation was executed as a query (POST /graphql), not subscribed to.
    if (item === undefined) throw subscriptionNotSubscribed();
    if ('failure' in item) throw item.failure;
    return item;
  }

  @Query(() => EvaluationResultPage, { description: "A run's finished cells, by case, then prompt version and model." })
  async evaluation_results(@Args() args: EvaluationResultsArgs, @Ctx() context: RequestContext): Promise<EvaluationResultPage> {
    const { run, results, nextCursor } = await context.services.evaluations.results(
      args.evaluation_id,
      { modelId: args.model_id, limit: args.limit, cursor: args.cursor },
      context.caller,
    );
    return { results: results.map((result) => toResult(run, result)), nextCursor };
  }
}

/**
 * The run's views as events. Following stops early only when the subscription's signal aborts: the
 * client left (nobody reads what comes next) or the server is shutting down, which the client must not
 * mistake for the run's end, so it gets an error.
 */
async function* progressOf(
  views: AsyncIterable<EvaluationView>,
  signal: AbortSignal | undefined,
): AsyncGenerator<Evaluation | { readonly failure: ApiError }> {
  let last: EvaluationView | undefined;
  for await (const view of views) {
    last = view;
    yield toEvaluation(view);
  }
  if (signal?.aborted && last && UNFINISHED_STATUSES.includes(last.status))
    yield { failure: shuttingDown('the run goes on; subscribe again (on another replica)') };
}

function toEvaluation(run: EvaluationView): Evaluation {
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    datasetId: run.datasetId,
    prompts: run.prompts,
    modelIds: run.modelIds,
    scorers: run.scorers.map((scorer) => ({ ...scorer, type: scorer.type as Evaluation['scorers'][number]['type'] })),
    progress: { total: run.total, completed: run.completed, failed: run.failed },
    variants: run.variants,
    best: run.best,
    error: run.error,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
  };
}

function toResult(run: StoredEvaluation, result: StoredResult): EvaluationResult {
  return {
    itemIndex: result.itemIndex,
    prompt: run.prompts[result.promptIndex]!,
    modelId: run.modelIds[result.modelIndex]!,
    generationId: result.generationId,
    text: result.text,
    expected: result.expected,
    scores: result.scores,
    passed: result.passed,
    latencyMs: result.latencyMs,
    costUsd: costUnitsToUsd(result.costUnits),
    error: result.error,
  };
}
