import type { LanguageModelProvider, ModelDescriptor, ProviderHealth } from './provider';

export interface ResolvedModel {
  readonly model: ModelDescriptor;
  readonly provider: LanguageModelProvider;
}

/** All configured providers behind one model namespace. */
export class ProviderRegistry {
  constructor(readonly providers: readonly LanguageModelProvider[]) {
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
        if (existing) {
          clashes.push(
            `model id "${model.id}" is served by both ${existing.provider.name} and ${provider.name}; ${existing.provider.name} wins (set id_prefix on an endpoint)`,
          );
          continue;
        }
        byId.set(model.id, { model, provider });
      }
    });
    return { models: [...byId.values()], clashes };
  }

  /** The model as listModels would resolve it (earlier providers win), asking providers in order. */
  async findModel(id: string): Promise<ResolvedModel | undefined> {
    for (const provider of this.providers) {
      const model = provider.findModel
        ? await provider.findModel(id)
        : (await provider.listModels()).find((candidate) => candidate.id === id);
      if (model) return { model, provider };
    }
    return undefined;
  }

  health(): ProviderHealth[] {
    return this.providers.map((provider) => provider.health());
  }

  async close(): Promise<void> {
    await Promise.all(this.providers.map((provider) => provider.close()));
  }
}
