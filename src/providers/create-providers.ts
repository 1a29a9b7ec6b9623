import type { AppConfig } from '../config';
import type { Logger } from '../logger';
import { type CatalogModelEntry, type EndpointEntry, servingProviders } from '../model-catalog';
import { createLocalProvider } from './local/local-provider';
import { createOpenAICompatibleProvider } from './openai-compatible/openai-compatible-provider';
import { createOpenAIProvider, type OpenAIModelSettings } from './openai/openai-provider';
import type { LanguageModelProvider, ModelDescriptor, ModelType } from './provider';
import { ProviderRegistry } from './registry';

type SharedSettings = Pick<AppConfig['upstream'], 'timeoutMs' | 'concurrency' | 'maxQueue'> & { discovery: AppConfig['discovery'] };

/** Builds every provider the configuration and its catalog describe. */
export function createProviderRegistry(config: AppConfig, logger?: Logger): ProviderRegistry {
  const { catalog } = config;
  const shared: SharedSettings = {
    timeoutMs: config.upstream.timeoutMs,
    concurrency: config.upstream.concurrency,
    maxQueue: config.upstream.maxQueue,
    discovery: config.discovery,
  };
  const openai = createOpenAIProvider({
    ...shared,
    apiKey: () => config.openai.apiKey,
    baseURL: config.openai.baseURL,
    models: catalog.models.filter((entry) => servingProviders(entry).includes('openai')).map((entry) => toOpenAIModelSettings(entry)),
  });
  const endpoints = catalog.endpoints.map((endpoint) => createEndpointProvider(endpoint, config, shared));
  const local = createLocalProvider(config.local, logger);
  const replicas = new Map(catalog.models.flatMap((entry) => (entry.endpoints ? [[entry.id, entry.endpoints] as const] : [])));
  return new ProviderRegistry([openai, local, ...endpoints], replicas);
}

function createEndpointProvider(endpoint: EndpointEntry, config: AppConfig, shared: SharedSettings): LanguageModelProvider {
  const keyVariable = endpoint.api_key_env;
  return createOpenAICompatibleProvider({
    ...shared,
    concurrency: endpoint.concurrency ?? shared.concurrency,
    name: endpoint.name,
    baseURL: endpoint.base_url,
    apiKey: () => (keyVariable ? config.endpointKeys[keyVariable] : undefined),
    modelType: endpoint.model_type,
    idPrefix: endpoint.id_prefix,
    tokenizer: endpoint.tokenizer,
    maxTokensParameter: endpoint.max_tokens_parameter,
    models: config.catalog.models
      .filter((entry) => servingProviders(entry).includes(endpoint.name))
      .map((entry) => describeCatalogEntry(entry, endpoint.name, endpoint.model_type)),
  });
}

function toOpenAIModelSettings(entry: CatalogModelEntry): OpenAIModelSettings {
  const descriptor = describeCatalogEntry(entry, 'openai', 'commercial');
  const fineTuned = entry.fine_tuned_pricing;
  return fineTuned
    ? {
        ...descriptor,
        fineTunedPricing: { inputPerMillion: fineTuned.input_per_million, outputPerMillion: fineTuned.output_per_million },
      }
    : descriptor;
}

/** The entry as served by one provider (a replicated model is described once per endpoint). */
function describeCatalogEntry(entry: CatalogModelEntry, provider: string, defaultType: ModelType): ModelDescriptor {
  const defaultCapabilities = entry.api === 'completion' ? ['text-generation', 'completion'] : ['text-generation', 'chat'];
  return {
    id: entry.id,
    upstreamModel: entry.upstream_model ?? entry.id,
    name: entry.name ?? entry.id,
    type: entry.type ?? (entry.id.startsWith('ft:') ? 'fine-tuned' : defaultType),
    provider,
    description: entry.description,
    contextLength: entry.context_length,
    capabilities: entry.capabilities ?? defaultCapabilities,
    api: entry.api,
    tokenizer: entry.tokenizer,
    pricing: entry.pricing && {
      inputPerMillion: entry.pricing.input_per_million,
      outputPerMillion: entry.pricing.output_per_million,
    },
  };
}
