import { Field, InputType, Int, ObjectType } from 'type-graphql';
import { DATASET_LIMITS } from '../../services/dataset.service';
import { DateTimeISO, JSONObject } from '../shared/scalars';

@ObjectType({ description: 'Test cases for evaluation runs, shared by every caller.' })
export class Dataset {
  @Field({ description: 'The dataset id.' })
  id!: string;

  @Field({ description: 'Its name.' })
  name!: string;

  @Field(() => String, { nullable: true, description: 'What the cases are for.' })
  description!: string | null;

  @Field(() => Int, { name: 'item_count', description: 'How many cases it holds.' })
  itemCount!: number;

  @Field(() => DateTimeISO, { name: 'created_at', description: 'When it was created (UTC).' })
  createdAt!: Date;
}

@ObjectType({ description: 'Every dataset, newest first.' })
export class DatasetList {
  @Field(() => [Dataset], { description: 'The datasets.' })
  datasets!: readonly Dataset[];
}

@ObjectType({ description: "One test case: a prompt's variables and, optionally, the answer expected." })
export class DatasetItem {
  @Field(() => Int, { description: 'Its position in the dataset, from 0.' })
  index!: number;

  @Field(() => JSONObject, { description: 'The values of the prompt template variables, by name (strings).' })
  variables!: Readonly<Record<string, string>>;

  @Field(() => String, { nullable: true, description: 'The answer expected, for scorers that compare with it.' })
  expected!: string | null;
}

@ObjectType({ description: "A page of a dataset's cases, in index order." })
export class DatasetItemPage {
  @Field(() => [DatasetItem], { description: 'At most `limit` cases.' })
  items!: readonly DatasetItem[];

  @Field(() => String, { name: 'next_cursor', nullable: true, description: 'Pass as `cursor` for the next page; null on the last.' })
  nextCursor!: string | null;
}

@InputType({ description: 'A test case to add to a dataset.' })
export class DatasetItemInput {
  @Field(() => JSONObject, { description: 'The values of the prompt template variables, by name: every value a string.' })
  variables!: Record<string, unknown>;

  @Field(() => String, {
    nullable: true,
    description: `The answer expected, at most ${DATASET_LIMITS.expectedMaxLength} characters.`,
  })
  expected?: string | null;
}
