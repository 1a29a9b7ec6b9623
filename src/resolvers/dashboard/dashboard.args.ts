import { ArgsType, Field, Int } from 'type-graphql';
import { DEFAULT_SERIES_LINES, MAX_SERIES_BUCKETS, MAX_SERIES_LINES, OTHER_GROUP } from '../../storage/usage-series';
import { DateTimeISO } from '../shared/scalars';
import { UsageSeriesGroupBy } from './dashboard.type';

@ArgsType()
export class UsageSeriesArgs {
  @Field(() => DateTimeISO, {
    nullable: true,
    description: 'Only generations started at or after this time (1970-01-01T00:00:00Z or later); by default until minus 24 hours.',
  })
  since?: Date | null;

  @Field(() => DateTimeISO, { nullable: true, description: 'Only generations started before this time; by default now.' })
  until?: Date | null;

  @Field(() => Int, {
    nullable: true,
    description: `The width of a bucket in seconds (at most ${MAX_SERIES_BUCKETS} buckets in the range); by default a round width that gives at most 120. A whole number of weeks starts on Mondays 00:00 UTC, any other width at multiples of it since the Unix epoch.`,
  })
  bucket_seconds?: number | null;

  @Field(() => Int, {
    nullable: true,
    defaultValue: DEFAULT_SERIES_LINES,
    description: `At most this many lines, 1 to ${MAX_SERIES_LINES}: with more groups in the range, the ${'`'}max_lines - 1${'`'} largest (by cost, then requests) and one line "${OTHER_GROUP}" that sums the others.`,
  })
  max_lines?: number | null;

  @Field(() => UsageSeriesGroupBy, { nullable: true, defaultValue: 'model', description: 'How to split the lines.' })
  group_by?: keyof typeof UsageSeriesGroupBy | null;
}
