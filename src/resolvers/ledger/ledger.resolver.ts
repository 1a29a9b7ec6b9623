import { Args, Ctx, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import type { Generation as LedgerGeneration } from '../../storage/ledger-types';
import { GenerationArgs, GenerationsArgs, UsageArgs } from './ledger.args';
import { Generation, GenerationPage, UsageReport } from './ledger.type';

/** The ledger's row as the schema shows it: the metrics grouped as on a generation's answer. */
const toGeneration = (row: LedgerGeneration): Generation => ({
  ...row,
  // Rows written before fallbacks existed name no model per attempt: it was the one asked for.
  attempts: row.attempts.map((attempt) => ({ ...attempt, modelId: attempt.modelId ?? row.modelId })),
  metrics: {
    latencyMs: row.latencyMs,
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    totalTokens: row.inputTokens + row.outputTokens,
  },
});

@Resolver()
export class LedgerResolver {
  @Query(() => GenerationPage, { description: 'The ledger of generations, newest first (members see their own).' })
  async generations(@Args() args: GenerationsArgs, @Ctx() context: RequestContext): Promise<GenerationPage> {
    const page = await context.services.ledger.list(context.caller, {
      modelId: args.model_id,
      status: args.status,
      caller: args.caller,
      since: args.since,
      until: args.until,
      limit: args.limit,
      cursor: args.cursor,
    });
    return { generations: page.generations.map(toGeneration), nextCursor: page.nextCursor };
  }

  @Query(() => Generation, { description: 'One generation from the ledger.' })
  async generation(@Args() args: GenerationArgs, @Ctx() context: RequestContext): Promise<Generation> {
    return toGeneration(await context.services.ledger.get(context.caller, args.generation_id));
  }

  @Query(() => UsageReport, { description: 'Requests, tokens and cost, grouped by model, caller, team or UTC day.' })
  usage(@Args() args: UsageArgs, @Ctx() context: RequestContext): Promise<UsageReport> {
    return context.services.ledger.usage(context.caller, { groupBy: args.group_by ?? 'model', since: args.since, until: args.until });
  }
}
