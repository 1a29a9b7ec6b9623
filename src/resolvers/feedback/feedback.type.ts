import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { FEEDBACK_GROUP_BY, THUMBS } from '../../storage/feedback-types';
import { enumOf } from '../shared/enums';
import { DateTimeISO } from '../shared/scalars';

export const Thumbs = enumOf(THUMBS);
registerEnumType(Thumbs, {
  name: 'Thumbs',
  description: 'A quick verdict on an answer.',
  valuesConfig: { up: { description: 'Good answer.' }, down: { description: 'Bad answer.' } },
});

export const FeedbackGroupBy = enumOf(FEEDBACK_GROUP_BY);
registerEnumType(FeedbackGroupBy, {
  name: 'FeedbackGroupBy',
  description: 'How feedback summary rows are grouped.',
  valuesConfig: {
    model: { description: 'By model id.' },
    prompt: { description: 'By prompt version, "<name>@<version>"; generations without one are the group "".' },
  },
});

@ObjectType({ description: "A person's rating, comment or correction of one generation. A generation may have several." })
export class Feedback {
  @Field({ description: 'The feedback id.' })
  id!: string;

  @Field({ name: 'generation_id', description: 'The generation it is about.' })
  generationId!: string;

  @Field({ name: 'model_id', description: "The generation's model." })
  modelId!: string;

  @Field({ description: 'Who gave it (the key name).' })
  caller!: string;

  @Field(() => Float, { nullable: true, description: '0 (worst) to 1 (best).' })
  score!: number | null;

  @Field(() => Thumbs, { nullable: true, description: 'Thumbs up or down.' })
  thumbs!: keyof typeof Thumbs | null;

  @Field(() => String, { nullable: true, description: 'Free text.' })
  comment!: string | null;

  @Field(() => String, { nullable: true, description: 'What the answer should have been.' })
  correction!: string | null;

  @Field(() => [String], { description: 'Labels.' })
  tags!: readonly string[];

  @Field(() => DateTimeISO, { name: 'created_at', description: 'When it was given (UTC).' })
  createdAt!: Date;
}

@ObjectType({ description: 'A page of feedback, newest first.' })
export class FeedbackPage {
  @Field(() => [Feedback], { description: 'At most `limit` pieces of feedback.' })
  feedback!: readonly Feedback[];

  @Field(() => String, { name: 'next_cursor', nullable: true, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor!: string | null;
}

@ObjectType({ description: 'Feedback aggregated for one model or prompt version.' })
export class FeedbackSummaryRow {
  @Field({ description: 'The model id, or "<prompt name>@<version>" ("" for generations without one).' })
  group!: string;

  @Field(() => Int, { description: 'Pieces of feedback.' })
  count!: number;

  @Field(() => Float, { name: 'mean_score', nullable: true, description: 'The mean of the scores given; null when none has a score.' })
  meanScore!: number | null;

  @Field(() => Int, { name: 'thumbs_up', description: 'Thumbs up.' })
  thumbsUp!: number;

  @Field(() => Int, { name: 'thumbs_down', description: 'Thumbs down.' })
  thumbsDown!: number;

  @Field(() => Int, { description: 'Pieces with a correction.' })
  corrections!: number;
}

@ObjectType({ description: 'Feedback per model or per prompt version.' })
export class FeedbackSummary {
  @Field(() => FeedbackGroupBy, { name: 'group_by', description: 'How the rows are grouped.' })
  groupBy!: keyof typeof FeedbackGroupBy;

  @Field(() => [FeedbackSummaryRow], { description: 'Sorted by group.' })
  rows!: readonly FeedbackSummaryRow[];
}
