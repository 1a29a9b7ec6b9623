import type { RequestContext } from '../context';
import type { ModelView } from '../services/model.service';

/** A model as OpenAI's `GET /v1/models` describes one. */
export interface OpenAIModel {
  readonly id: string;
  readonly object: 'model';
  /** Unix seconds: a fine-tune's creation date from its model card, else when this gateway started. */
  readonly created: number;
  /** The provider that serves it: `openai`, an OpenAI-compatible endpoint's name, or `local`. */
  readonly owned_by: string;
}

/** GET /v1/models and GET /v1/models/{id}, from the same model service as /api/v1/models. */
export class ModelsRoute {
  private readonly startedAt = Math.floor(Date.now() / 1000);

  /** The models that can serve now: an OpenAI client picks from this list, and an unavailable one would only fail. */
  async list(context: RequestContext): Promise<{ readonly object: 'list'; readonly data: readonly OpenAIModel[] }> {
    const models = await context.services.models.listModels();
    return { object: 'list', data: models.filter((model) => model.status === 'available').map((model) => this.toOpenAI(model)) };
  }

  /** Any known model, available or not (a generation with it says why it cannot serve); 404 model_not_found otherwise. */
  async retrieve(context: RequestContext, modelId: string): Promise<OpenAIModel> {
    return this.toOpenAI(await context.services.models.getModel(modelId));
  }

  private toOpenAI(model: ModelView): OpenAIModel {
    const cardDate = model.fineTuning?.createdAt ? Date.parse(model.fineTuning.createdAt) : Number.NaN;
    return {
      id: model.id,
      object: 'model',
      created: Number.isNaN(cardDate) ? this.startedAt : Math.floor(cardDate / 1000),
      owned_by: model.provider,
    };
  }
}
