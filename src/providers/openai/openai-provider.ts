import type { LanguageModelProvider, ModelDescriptor, ModelPricing } from '../provider';
import { createSdkProvider } from '../openai-sdk/sdk-provider';

export interface OpenAIModelSettings extends ModelDescriptor {
  /** What the account's fine-tunes of this model cost (`ft:<id>...`). */
  readonly fineTunedPricing?: ModelPricing;
}

export interface OpenAIProviderSettings {
  readonly apiKey: () => string | undefined;
  readonly baseURL?: string;
  readonly models: readonly OpenAIModelSettings[];
  readonly timeoutMs: number;
  /** Requests that may wait for a connection slot; more are refused at once. */
  readonly maxQueue: number;
  readonly concurrency: number;
  readonly discovery: { readonly intervalMs: number; readonly timeoutMs: number };
}

export const missingOpenAIKeyReason = 'OPENAI_API_KEY is not set, so OpenAI models are unavailable';

/**
 * OpenAI's commercial models come from the catalog; the account's own fine-tunes (`ft:...`)
 * are discovered from its models list.
 */
export function createOpenAIProvider(settings: OpenAIProviderSettings): LanguageModelProvider {
  return createSdkProvider({
    name: 'openai',
    kind: 'openai',
    baseURL: settings.baseURL,
    apiKey: settings.apiKey,
    missingKeyReason: missingOpenAIKeyReason,
    timeoutMs: settings.timeoutMs,
    maxQueue: settings.maxQueue,
    concurrency: settings.concurrency,
    maxTokensParameter: 'max_completion_tokens',
    configuredModels: settings.models,
    discovery: settings.discovery,
    describeModels: (upstreamIds) => {
      const known = new Set(settings.models.map((model) => model.id));
      const fineTunes = upstreamIds
        .filter((id) => id.startsWith('ft:') && !known.has(id))
        .map((id) => describeFineTune(id, settings.models));
      return [...settings.models, ...fineTunes];
    },
  });
}

/** `ft:gpt-4o-mini-2024-07-18:acme::9abc` inherits context, tokenizer and fine-tune price from `gpt-4o-mini`. */
export function describeFineTune(id: string, catalog: readonly OpenAIModelSettings[]): ModelDescriptor {
  const [, baseId = '', organization = '', suffix = ''] = id.split(':');
  const base = catalog.filter((model) => baseId.startsWith(model.id)).sort((left, right) => right.id.length - left.id.length)[0];
  const label = suffix || id.split(':').at(-1) || id;
  return {
    id,
    upstreamModel: id,
    name: base ? `${base.name} fine-tune (${label})` : id,
    type: 'fine-tuned',
    provider: 'openai',
    description: `Fine-tuned from ${baseId || 'an OpenAI model'}${organization ? ` by ${organization}` : ''}.`,
    contextLength: base?.contextLength,
    capabilities: base?.capabilities ?? ['text-generation', 'chat'],
    api: 'chat',
    tokenizer: base?.tokenizer ?? 'o200k_base',
    pricing: base?.fineTunedPricing ?? base?.pricing,
    baseModel: baseId || undefined,
  };
}
