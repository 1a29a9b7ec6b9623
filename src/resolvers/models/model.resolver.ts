import { Args, Ctx, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { ModelArgs } from './model.args';
import { ModelInfoResponse, ModelsListResponse } from './model.type';

@Resolver()
export class ModelResolver {
  @Query(() => ModelsListResponse, { description: 'Lists every model, fine-tuned and commercial, with its availability.' })
  async models(@Ctx() context: RequestContext): Promise<ModelsListResponse> {
    const models = await context.services.models.listModels();
    return { models, count: models.length, timestamp: new Date() };
  }

  @Query(() => ModelInfoResponse, { description: 'Detailed information about one model; model_not_found when unknown.' })
  async model(@Args() { model_id: modelId }: ModelArgs, @Ctx() context: RequestContext): Promise<ModelInfoResponse> {
    return { model: await context.services.models.getModel(modelId), timestamp: new Date() };
  }
}
