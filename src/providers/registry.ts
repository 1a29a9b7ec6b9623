import type { LanguageModelProvider, ModelDescriptor, ProviderHealth } from './provider';

export interface ResolvedModel {
  readonly model: ModelDescriptor;
  readonly provider: LanguageModelProvider;
}

/** All configured providers behind one model namespace. */
export class ProviderRegistry {
  /**
   * @param replicas model id to the endpoints that all serve it (a catalog entry's `endpoints`): those
   * ids are meant to appear at several providers, so they are not clashes.
   */
  constructor(
    readonly providers: readonly LanguageModelProvider[],
    private readonly replicas: ReadonlyMap<string, readonly string[]> = new Map(),
  ) {
    const names = new Set<string>();
    for (const provider of providers) {
      if (names.has(provider.name)) throw new Error(`Two providers are named "${provider.name}"`);
      names.add(provider.name);
    }
  }

  /** Every provider's models; on an id clash the earlier provider wins and the clash is reported. */
  async listModels(): Promise<{ models: ResolvedModel[]; clashes: string[] }> {
    const lists = await Promise.all(this.providers.map((provider) => provider.listModels()));
    const byId = new Map<string, ResolvedModel>();
    const clashes: string[] = [];
    lists.forEach((models, index) => {
      const provider = this.providers[index]!;
      for (const model of models) {
        const existing = byId.get(model.id);
        if (!existing) {
          byId.set(model.id, { model, provider });
          continue;
        }
        if (this.replicas.has(model.id)) {
          // One replica listed is enough; an available one stands for the model.
          if (existing.model.unavailableReason !== undefined && model.unavailableReason === undefined)
            byId.set(model.id, { model, provider });
          continue;
        }
        clashes.push(
          `model id "${model.id}" is served by both ${existing.provider.name} and ${provider.name}; ${existing.provider.name} wins (set id_prefix on an endpoint)`,
        );
      }
    });
    return { models: [...byId.values()], clashes };
  }

  /** The model as listModels would resolve it (earlier providers win), asking providers in order. */
  async findModel(id: string): Promise<ResolvedModel | undefined> {
    for (const provider of this.providers) {
      const model = await this.findAt(provider, id);
      if (model) return { model, provider };
    }
    return undefined;
  }

  /** Every endpoint that serves the model: its catalog `endpoints` in order, or the one provider that lists it. */
  async findReplicas(id: string): Promise<ResolvedModel[]> {
    const endpointNames = this.replicas.get(id);
    if (!endpointNames) {
      const found = await this.findModel(id);
      return found ? [found] : [];
    }
    const found = await Promise.all(
      endpointNames.map(async (name): Promise<ResolvedModel | undefined> => {
        const provider = this.providers.find((candidate) => candidate.name === name);
        const model = provider && (await this.findAt(provider, id));
        return provider && model ? { model, provider } : undefined;
      }),
    );
    return found.filter((replica): replica is ResolvedModel => replica !== undefined);
  }

  health(): ProviderHealth[] {
    return this.providers.map((provider) => provider.health());
  }

  async close(): Promise<void> {
    await Promise.all(this.providers.map((provider) => provider.close()));
  }

  private async findAt(provider: LanguageModelProvider, id: string): Promise<ModelDescriptor | undefined> {
    return provider.findModel ? provider.findModel(id) : (await provider.listModels()).find((candidate) => candidate.id === id);
  }
}
