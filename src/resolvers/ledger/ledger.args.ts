import { ArgsType, Field, Int } from 'type-graphql';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../services/paging';
import { DateTimeISO } from '../shared/scalars';
import { GenerationStatus, UsageGroupBy } from './ledger.type';

@ArgsType()
export class PeriodArgs {
  @Field(() => DateTimeISO, { nullable: true, description: 'Only generations started at or after this time.' })
  since?: Date | null;

  @Field(() => DateTimeISO, { nullable: true, description: 'Only generations started before this time.' })
  until?: Date | null;
}

@ArgsType()
export class GenerationsArgs extends PeriodArgs {
  @Field(() => String, { nullable: true, description: 'Only generations of this model.' })
  model_id?: string | null;

  @Field(() => GenerationStatus, { nullable: true, description: 'Only generations that ended this way.' })
  status?: keyof typeof GenerationStatus | null;

  @Field(() => String, { nullable: true, description: 'Admins only; a member always sees their own.' })
  caller?: string | null;

  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_PAGE_SIZE, description: `Page size, 1 to ${MAX_PAGE_SIZE}.` })
  limit?: number | null;

  @Field(() => String, { nullable: true, description: "The previous page's next_cursor." })
  cursor?: string | null;
}

@ArgsType()
export class GenerationArgs {
  @Field({ description: 'The id from metadata.generation_id or a ledger page.' })
  generation_id!: string;
}

@ArgsType()
export class UsageArgs extends PeriodArgs {
  @Field(() => UsageGroupBy, { nullable: true, defaultValue: 'model', description: 'How to group the rows.' })
  group_by?: keyof typeof UsageGroupBy | null;
}
