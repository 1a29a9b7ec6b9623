import type { LanguageModelProvider, ModelDescriptor, ModelType, TokenizerName } from '../provider';
import type { MaxTokensParameter } from '../openai-sdk/generate-text';
import { createSdkProvider } from '../openai-sdk/sdk-provider';

export interface OpenAICompatibleProviderSettings {
  /** The endpoint's name, shown as the models' provider. */
  readonly name: string;
  readonly baseURL: string;
  readonly apiKey: () => string | undefined;
  /** Type of discovered models not described in the catalog. */
  readonly modelType: ModelType;
  /** Prepended to upstream ids, for endpoints whose ids would collide with another's. */
  readonly idPrefix: string;
  readonly tokenizer: TokenizerName;
  readonly maxTokensParameter: MaxTokensParameter;
  /** Catalog entries for this endpoint's models: names, completion api, prices. */
  readonly models: readonly ModelDescriptor[];
  readonly timeoutMs: number;
  /** Requests that may wait for a connection slot; more are refused at once. */
  readonly maxQueue: number;
  readonly concurrency: number;
  readonly discovery: { readonly intervalMs: number; readonly timeoutMs: number };
}

/** Any server speaking the OpenAI API (vLLM, Ollama, llama.cpp server, TGI, LM Studio); models come from its `GET /models`. */
export function createOpenAICompatibleProvider(settings: OpenAICompatibleProviderSettings): LanguageModelProvider {
  const configuredByUpstreamId = new Map(settings.models.map((model) => [model.upstreamModel, model]));
  return createSdkProvider({
    name: settings.name,
    kind: 'openai-compatible',
    baseURL: settings.baseURL,
    apiKey: settings.apiKey,
    timeoutMs: settings.timeoutMs,
    maxQueue: settings.maxQueue,
    concurrency: settings.concurrency,
    maxTokensParameter: settings.maxTokensParameter,
    configuredModels: settings.models,
    discovery: settings.discovery,
    describeModels: (upstreamIds) =>
      upstreamIds.map(
        (upstreamId): ModelDescriptor =>
          configuredByUpstreamId.get(upstreamId) ?? {
            id: `${settings.idPrefix}${upstreamId}`,
            upstreamModel: upstreamId,
            name: upstreamId,
            type: settings.modelType,
            provider: settings.name,
            description: `Served by the OpenAI-compatible endpoint "${settings.name}".`,
            capabilities: ['text-generation', 'chat'],
            api: 'chat',
            tokenizer: settings.tokenizer,
          },
      ),
  });
}
