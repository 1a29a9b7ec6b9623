import { modelNotFound } from '../errors/api-error';
import type { ModelDescriptor, ModelType } from '../providers/provider';
import type { ProviderRegistry } from '../providers/registry';

export type ModelStatus = 'available' | 'unavailable';

export interface ModelView {
  readonly id: string;
  readonly name: string;
  readonly type: ModelType;
  readonly provider: string;
  readonly description?: string;
  readonly status: ModelStatus;
  readonly statusReason?: string;
  readonly capabilities: readonly string[];
  readonly contextLength?: number;
  readonly api: ModelDescriptor['api'];
  readonly baseModel?: string;
  readonly pricing?: { readonly inputPerMillion: number; readonly outputPerMillion: number };
  readonly fineTuning?: {
    readonly dataset?: string;
    readonly createdAt?: string;
    readonly evaluation: ReadonlyArray<{ readonly metric: string; readonly value: number }>;
  };
}

export function toModelView(model: ModelDescriptor): ModelView {
  return {
    id: model.id,
    name: model.name,
    type: model.type,
    provider: model.provider,
    description: model.description,
    status: model.unavailableReason === undefined ? 'available' : 'unavailable',
    statusReason: model.unavailableReason,
    capabilities: model.capabilities,
    contextLength: model.contextLength,
    api: model.api,
    baseModel: model.baseModel,
    pricing: model.pricing,
    fineTuning: model.fineTuning && {
      dataset: model.fineTuning.dataset,
      createdAt: model.fineTuning.createdAt,
      evaluation: Object.entries(model.fineTuning.evaluation ?? {}).map(([metric, value]) => ({ metric, value })),
    },
  };
}

/** What the models queries show: every provider's models, as clients see them. */
export class ModelService {
  constructor(private readonly registry: ProviderRegistry) {}

  async listModels(): Promise<ModelView[]> {
    const { models } = await this.registry.listModels();
    return models.map((entry) => toModelView(entry.model));
  }

  async getModel(modelId: string): Promise<ModelView> {
    // A replicated model is available when any of its replicas is, as the list says.
    const replicas = await this.registry.findReplicas(modelId);
    const found = replicas.find((replica) => replica.model.unavailableReason === undefined) ?? replicas[0];
    if (!found) throw modelNotFound(modelId);
    return toModelView(found.model);
  }
}
