import { type GraphQLResolveInfo, Kind, type SelectionSetNode } from 'graphql';
import { Args, Ctx, Info, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { UsageSeriesArgs } from './dashboard.args';
import { UsageSeries } from './dashboard.type';

const LATENCY_FIELDS = new Set(['p50_latency_ms', 'p95_latency_ms']);

/** Whether the operation selects a latency percentile anywhere below this field (fragments included). */
function selectsLatency(info: GraphQLResolveInfo): boolean {
  const visited = new Set<string>();
  const walk = (selectionSet: SelectionSetNode | undefined): boolean =>
    (selectionSet?.selections ?? []).some((selection) => {
      if (selection.kind === Kind.FIELD) return LATENCY_FIELDS.has(selection.name.value) || walk(selection.selectionSet);
      if (selection.kind === Kind.INLINE_FRAGMENT) return walk(selection.selectionSet);
      const name = selection.name.value;
      if (visited.has(name)) return false;
      visited.add(name);
      return walk(info.fragments[name]?.selectionSet);
    });
  return info.fieldNodes.some((node) => walk(node.selectionSet));
}

@Resolver()
export class DashboardResolver {
  @Query(() => UsageSeries, {
    description:
      'Requests, failures, tokens, cost and p50/p95 latency over time, per model, caller or team (members see their own): what GET /dashboard charts.',
  })
  async usage_series(
    @Args() args: UsageSeriesArgs,
    @Ctx() context: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<UsageSeries> {
    const series = await context.services.dashboard.usageSeries(context.caller, {
      groupBy: args.group_by ?? 'model',
      since: args.since,
      until: args.until,
      bucketSeconds: args.bucket_seconds,
      maxLines: args.max_lines,
      // The percentiles cost a sort of the range's rows: only when the operation reads them.
      latency: selectsLatency(info),
    });
    return {
      groupBy: series.groupBy,
      since: series.since,
      until: series.until,
      bucketSeconds: series.bucketMs / 1000,
      buckets: series.buckets,
      groups: series.groups,
      series: series.lines,
    };
  }
}
