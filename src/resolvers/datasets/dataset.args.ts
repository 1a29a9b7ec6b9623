import { ArgsType, Field, Int } from 'type-graphql';
import { DATASET_LIMITS } from '../../services/dataset.service';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../services/paging';
import { DatasetItemInput } from './dataset.type';

@ArgsType()
export class DatasetIdArgs {
  @Field({ name: 'dataset_id', description: 'The dataset id.' })
  dataset_id!: string;
}

@ArgsType()
export class CreateDatasetArgs {
  @Field({ description: `1 to ${DATASET_LIMITS.nameMaxLength} characters.` })
  name!: string;

  @Field(() => String, { nullable: true, description: `At most ${DATASET_LIMITS.descriptionMaxLength} characters.` })
  description?: string | null;

  @Field(() => [DatasetItemInput], { description: `The cases, 1 to ${DATASET_LIMITS.maxItems}, in order.` })
  items!: DatasetItemInput[];
}

@ArgsType()
export class AddDatasetItemsArgs extends DatasetIdArgs {
  @Field(() => [DatasetItemInput], {
    description: `The cases to add after the last one, 1 to ${DATASET_LIMITS.maxAppendedItems}; the dataset holds at most ${DATASET_LIMITS.maxItems}.`,
  })
  items!: DatasetItemInput[];
}

@ArgsType()
export class DatasetItemsArgs extends DatasetIdArgs {
  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_PAGE_SIZE, description: `Page size, 1 to ${MAX_PAGE_SIZE}.` })
  limit?: number | null;

  @Field(() => String, { nullable: true, description: "The previous page's next_cursor." })
  cursor?: string | null;
}
