import DataLoader from 'dataloader';
import type { GenerationRequest, GenerationResult, LanguageModelProvider } from '../providers/provider';

export interface GenerationKey {
  readonly provider: LanguageModelProvider;
  readonly request: GenerationRequest;
}

export type GenerationLoader = DataLoader<GenerationKey, GenerationResult>;

/**
 * One loader per GraphQL request: every prompt loaded in the same tick reaches its provider
 * as one `generateBatch` call. No cache: the same prompt twice must be generated twice.
 */
export function createGenerationLoader(): GenerationLoader {
  return new DataLoader<GenerationKey, GenerationResult>(
    async (keys) => {
      const results: Array<GenerationResult | Error> = new Array(keys.length);
      const byProvider = new Map<LanguageModelProvider, number[]>();
      keys.forEach((key, index) => {
        const indexes = byProvider.get(key.provider) ?? [];
        indexes.push(index);
        byProvider.set(key.provider, indexes);
      });
      await Promise.all(
        [...byProvider].map(async ([provider, indexes]) => {
          const answers = await provider.generateBatch(indexes.map((index) => keys[index]!.request));
          answers.forEach((answer, position) => {
            results[indexes[position]!] = answer;
          });
        }),
      );
      return results;
    },
    { cache: false, maxBatchSize: 64 },
  );
}
