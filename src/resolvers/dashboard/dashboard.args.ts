import { ArgsType, Field, Int } from 'type-graphql';
import { MAX_SERIES_BUCKETS } from '../../storage/usage-series';
import { DateTimeISO } from '../shared/scalars';
import { UsageSeriesGroupBy } from './dashboard.type';

@ArgsType()
export class UsageSeriesArgs {
  @Field(() => DateTimeISO, {
    nullable: true,
    description: 'Only generations started at or after this time; by default until minus 24 hours.',
  })
  since?: Date | null;

  @Field(() => DateTimeISO, { nullable: true, description: 'Only generations started before this time; by default now.' })
  until?: Date | null;

  @Field(() => Int, {
    nullable: true,
    description: `The width of a bucket in seconds (at most ${MAX_SERIES_BUCKETS} buckets in the range); by default a round width that gives at most 120.`,
  })
  bucket_seconds?: number | null;

  @Field(() => UsageSeriesGroupBy, { nullable: true, defaultValue: 'model', description: 'How to split the lines.' })
  group_by?: keyof typeof UsageSeriesGroupBy | null;
}
