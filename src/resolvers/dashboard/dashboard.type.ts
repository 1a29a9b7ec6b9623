import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { OTHER_GROUP, USAGE_SERIES_GROUP_BY } from '../../storage/usage-series';
import { UsageTotals } from '../ledger/ledger.type';
import { enumOf } from '../shared/enums';
import { DateTimeISO, SafeInt } from '../shared/scalars';

export const UsageSeriesGroupBy = enumOf(USAGE_SERIES_GROUP_BY);
registerEnumType(UsageSeriesGroupBy, {
  name: 'UsageSeriesGroupBy',
  description: 'How the lines of a usage series are split.',
  valuesConfig: {
    model: { description: 'One line per model id.' },
    caller: { description: "One line per key's name." },
    team: { description: 'One line per team; callers without one are the group "".' },
  },
});

@ObjectType({ description: "One group's generations in one time bucket: requests, failures, tokens, cost and latency." })
export class UsagePoint extends UsageTotals {
  @Field(() => DateTimeISO, { description: 'When the bucket starts (UTC).' })
  start!: Date;

  @Field(() => SafeInt, {
    name: 'p50_latency_ms',
    nullable: true,
    description:
      "Median latency of the generations that succeeded (nearest rank; on the folded line, over all its groups' generations); null when none succeeded.",
  })
  p50LatencyMs!: number | null;

  @Field(() => SafeInt, {
    name: 'p95_latency_ms',
    nullable: true,
    description:
      "95th percentile latency of the generations that succeeded (nearest rank; on the folded line, over all its groups' generations); null when none succeeded.",
  })
  p95LatencyMs!: number | null;
}

@ObjectType({ description: "One group's line of a usage series." })
export class UsageSeriesLine {
  @Field({ description: `The model id, caller, or team ("" for none); "${OTHER_GROUP}" on the folded line.` })
  group!: string;

  @Field(() => Int, {
    name: 'folded_groups',
    description: `0 on a group's own line; on the folded line ("${OTHER_GROUP}", always the last), how many groups it sums.`,
  })
  foldedGroups!: number;

  @Field(() => [UsagePoint], { description: 'Only the buckets in which the group has generations, oldest first; the others are zero.' })
  points!: readonly UsagePoint[];
}

@ObjectType({ description: "The ledger's usage over time: one line per group, one point per time bucket with generations." })
export class UsageSeries {
  @Field(() => UsageSeriesGroupBy, { name: 'group_by', description: 'How the lines are split.' })
  groupBy!: keyof typeof UsageSeriesGroupBy;

  @Field(() => DateTimeISO, { description: 'Inclusive: generations started at or after this time.' })
  since!: Date;

  @Field(() => DateTimeISO, { description: 'Exclusive: generations started before this time.' })
  until!: Date;

  @Field(() => Int, {
    name: 'bucket_seconds',
    description:
      "The width of a bucket: a whole number of weeks starts on Mondays 00:00 UTC (as budgets' weeks do), any other width at multiples of it since the Unix epoch (so whole days at midnight UTC).",
  })
  bucketSeconds!: number;

  @Field(() => [DateTimeISO], {
    description: 'The start of every bucket that overlaps the range, oldest first (the first and last may reach outside it).',
  })
  buckets!: readonly Date[];

  @Field(() => Int, { description: 'How many groups have generations in the range, the folded ones included.' })
  groups!: number;

  @Field(() => [UsageSeriesLine], {
    description: `One line per group with generations in the range, sorted by group; beyond max_lines groups, the largest and then one line "${OTHER_GROUP}" for the rest.`,
  })
  series!: readonly UsageSeriesLine[];
}
