import { ArgsType, Field, Float, Int } from 'type-graphql';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../services/paging';
import { FEEDBACK_LIMITS } from '../../services/feedback.service';
import { PeriodArgs } from '../ledger/ledger.args';
import { FeedbackGroupBy, Thumbs } from './feedback.type';

@ArgsType()
export class SubmitFeedbackArgs {
  @Field({ name: 'generation_id', description: 'The generation rated (metadata.generation_id of its answer).' })
  generation_id!: string;

  @Field(() => Float, { nullable: true, description: '0 (worst) to 1 (best).' })
  score?: number | null;

  @Field(() => Thumbs, { nullable: true, description: 'Thumbs up or down.' })
  thumbs?: keyof typeof Thumbs | null;

  @Field(() => String, { nullable: true, description: `Free text, at most ${FEEDBACK_LIMITS.commentMaxLength} characters.` })
  comment?: string | null;

  @Field(() => String, {
    nullable: true,
    description: `What the answer should have been (1 to ${FEEDBACK_LIMITS.correctionMaxLength} characters): it becomes training data.`,
  })
  correction?: string | null;

  @Field(() => [String], {
    nullable: true,
    description: `Labels: at most ${FEEDBACK_LIMITS.maxTags}, each 1 to ${FEEDBACK_LIMITS.tagMaxLength} characters.`,
  })
  tags?: string[] | null;
}

/** `since`/`until` here are when the feedback was given. */
@ArgsType()
export class FeedbackArgs extends PeriodArgs {
  @Field(() => String, { nullable: true, description: 'Only feedback on this generation.' })
  generation_id?: string | null;

  @Field(() => String, { nullable: true, description: 'Only feedback on generations of this model.' })
  model_id?: string | null;

  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_PAGE_SIZE, description: `Page size, 1 to ${MAX_PAGE_SIZE}.` })
  limit?: number | null;

  @Field(() => String, { nullable: true, description: "The previous page's next_cursor." })
  cursor?: string | null;
}

@ArgsType()
export class FeedbackSummaryArgs extends PeriodArgs {
  @Field(() => FeedbackGroupBy, { nullable: true, defaultValue: 'model', description: 'How to group the rows.' })
  group_by?: keyof typeof FeedbackGroupBy | null;
}
