import OpenAI from 'openai';
import { ConcurrencyLimit } from '../concurrency-limit';
import { ModelDiscovery } from '../model-discovery';
import {
  ProviderError,
  type GenerationRequest,
  type GenerationResult,
  type LanguageModelProvider,
  type ModelDescriptor,
  type ProviderHealth,
} from '../provider';
import { generateWithOpenAISdk, type MaxTokensParameter } from './generate-text';
import { mapSdkError } from './map-sdk-error';

export interface SdkProviderSettings {
  readonly name: string;
  readonly kind: string;
  readonly baseURL: string | undefined;
  /** Read at call time, so a key that is missing fails calls, not start-up. */
  readonly apiKey: () => string | undefined;
  /** When set, the provider cannot work without a key and says this instead. */
  readonly missingKeyReason?: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly concurrency: number;
  readonly maxTokensParameter: MaxTokensParameter;
  readonly configuredModels: readonly ModelDescriptor[];
  /** Turns the upstream's model list into descriptors. */
  readonly describeModels: (upstreamIds: string[]) => ModelDescriptor[];
  readonly discovery: { readonly intervalMs: number; readonly timeoutMs: number };
}

// Local servers (vLLM, Ollama, llama.cpp) often need no key, but the SDK insists on one.
const placeholderKey = 'no-key-configured';

/** A provider that talks to OpenAI or an OpenAI-compatible server through the official `openai` SDK. */
export function createSdkProvider(settings: SdkProviderSettings): LanguageModelProvider {
  const limit = new ConcurrencyLimit(settings.concurrency);
  let client: { key: string; instance: OpenAI } | undefined;

  const getClient = (): OpenAI => {
    const key = settings.apiKey() ?? (settings.missingKeyReason ? undefined : placeholderKey);
    if (!key) {
      throw new ProviderError(settings.missingKeyReason ?? `${settings.name} has no API key`, { kind: 'unavailable' });
    }
    if (client?.key !== key) {
      const instance = new OpenAI({
        apiKey: key,
        baseURL: settings.baseURL,
        timeout: settings.timeoutMs,
        maxRetries: settings.maxRetries,
      });
      client = { key, instance };
    }
    return client.instance;
  };

  const isConfigured = (): boolean => !settings.missingKeyReason || settings.apiKey() !== undefined;

  const discovery = new ModelDiscovery({
    configuredModels: settings.configuredModels,
    intervalMs: settings.discovery.intervalMs,
    timeoutMs: settings.discovery.timeoutMs,
    discover: async (signal) => {
      const page = await getClient().models.list({ signal, maxRetries: 0, timeout: settings.discovery.timeoutMs });
      return settings.describeModels(page.data.map((model) => model.id));
    },
    describeFailure: (error) => mapSdkError(error, settings.name, settings.discovery.timeoutMs).message,
  });
  if (isConfigured()) discovery.start();

  const generate = (request: GenerationRequest): Promise<GenerationResult> =>
    limit.run(async () => {
      // Our own deadline bounds the call with its retries, and its abort is recognisable in any realm.
      const deadline = AbortSignal.timeout(settings.timeoutMs);
      const signal = request.signal ? AbortSignal.any([request.signal, deadline]) : deadline;
      const startedAt = performance.now();
      try {
        const result = await generateWithOpenAISdk(
          getClient(),
          { ...request, signal },
          settings.maxTokensParameter,
          settings.name,
        );
        return { ...result, latencyMs: Math.round(performance.now() - startedAt) };
      } catch (error) {
        if (deadline.aborted) {
          throw new ProviderError(`${settings.name} did not answer within ${settings.timeoutMs} ms`, {
            kind: 'timeout',
            isRetryable: true,
            cause: error,
          });
        }
        throw mapSdkError(error, settings.name, settings.timeoutMs);
      }
    });

  return {
    name: settings.name,
    kind: settings.kind,
    async listModels() {
      if (!isConfigured()) {
        return settings.configuredModels.map((model) => ({ ...model, unavailableReason: settings.missingKeyReason }));
      }
      return discovery.listModels();
    },
    generate,
    generateBatch(requests) {
      return Promise.all(
        requests.map((request) =>
          generate(request).catch((error: unknown) => mapSdkError(error, settings.name, settings.timeoutMs)),
        ),
      );
    },
    health(): ProviderHealth {
      if (!isConfigured()) {
        return {
          name: settings.name,
          kind: settings.kind,
          state: 'unconfigured',
          detail: settings.missingKeyReason,
          modelCount: settings.configuredModels.length,
          ready: true,
        };
      }
      const { state, detail, modelCount } = discovery.health;
      return { name: settings.name, kind: settings.kind, state, detail, modelCount, ready: discovery.initialized };
    },
    async close() {
      discovery.stop();
    },
  };
}
