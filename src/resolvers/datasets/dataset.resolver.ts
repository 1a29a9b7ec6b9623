import { Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { AddDatasetItemsArgs, CreateDatasetArgs, DatasetIdArgs, DatasetItemsArgs } from './dataset.args';
import { Dataset, DatasetItemPage, DatasetList } from './dataset.type';

@Resolver()
export class DatasetResolver {
  @Query(() => DatasetList, { description: 'Every dataset of test cases, newest first.' })
  async datasets(@Ctx() context: RequestContext): Promise<DatasetList> {
    return { datasets: await context.services.datasets.list() };
  }

  @Query(() => Dataset, { description: 'One dataset.' })
  dataset(@Args() args: DatasetIdArgs, @Ctx() context: RequestContext): Promise<Dataset> {
    return context.services.datasets.get(args.dataset_id);
  }

  @Query(() => DatasetItemPage, { description: "A dataset's cases in index order, a page at a time." })
  dataset_items(@Args() args: DatasetItemsArgs, @Ctx() context: RequestContext): Promise<DatasetItemPage> {
    return context.services.datasets.items(args.dataset_id, { limit: args.limit, cursor: args.cursor });
  }

  @Mutation(() => Dataset, { description: 'Creates a dataset of test cases (indices from 0, in the order given).' })
  create_dataset(@Args() args: CreateDatasetArgs, @Ctx() context: RequestContext): Promise<Dataset> {
    return context.services.datasets.create({ name: args.name, description: args.description, items: args.items });
  }

  @Mutation(() => Dataset, { description: 'Appends cases to a dataset, all or none; answers the dataset with its new item count.' })
  add_dataset_items(@Args() args: AddDatasetItemsArgs, @Ctx() context: RequestContext): Promise<Dataset> {
    return context.services.datasets.append(args.dataset_id, args.items);
  }
}
