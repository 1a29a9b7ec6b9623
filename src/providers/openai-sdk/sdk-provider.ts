import type OpenAI from 'openai';
import { ConcurrencyLimit, QueueFullError } from '../concurrency-limit';
import { ModelDiscovery } from '../model-discovery';
import { modelStream } from '../model-stream';
import {
  ProviderError,
  type GenerationRequest,
  type GenerationResult,
  type LanguageModelProvider,
  type ModelDescriptor,
  type ModelStream,
  type ProviderHealth,
} from '../provider';
import { generateCompletionsInOneCall, generateWithOpenAISdk, type MaxTokensParameter } from './generate-text';
import { mapSdkError } from './map-sdk-error';
import { SignalledOpenAI } from './signalled-client';
import { streamWithOpenAISdk } from './stream-text';
import { createUndiciFetch } from './undici-fetch';

export interface SdkProviderSettings {
  readonly name: string;
  readonly kind: string;
  readonly baseURL: string | undefined;
  /** Read at call time, so a key that is missing fails calls, not start-up. */
  readonly apiKey: () => string | undefined;
  /** When set, the provider cannot work without a key and says this instead. */
  readonly missingKeyReason?: string;
  /** A safety net only: the generation pipeline's deadline (the request's signal) bounds every call. */
  readonly timeoutMs: number;
  /** Upstream calls in flight at once; more wait, at most `maxQueue` of them. */
  readonly concurrency: number;
  readonly maxQueue: number;
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
  const limit = new ConcurrencyLimit(settings.concurrency, settings.maxQueue);
  const signalIds = new WeakMap<AbortSignal, number>();
  const upstreamFetch = createUndiciFetch({ connectionsPerOrigin: settings.concurrency });
  let client: { key: string; instance: OpenAI } | undefined;

  const getClient = (): OpenAI => {
    const key = settings.apiKey() ?? (settings.missingKeyReason ? undefined : placeholderKey);
    if (!key) {
      throw new ProviderError(settings.missingKeyReason ?? `${settings.name} has no API key`, { kind: 'unavailable' });
    }
    if (client?.key !== key) {
      const instance = new SignalledOpenAI({
        apiKey: key,
        baseURL: settings.baseURL,
        timeout: settings.timeoutMs,
        // The generation pipeline is the one layer that retries.
        maxRetries: 0,
        // The SDK types its fetch as the WHATWG one; ours returns the part of a Response it reads.
        fetch: upstreamFetch as unknown as typeof fetch,
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

  const toProviderError = (error: unknown): ProviderError => mapSdkError(error, settings.name, settings.timeoutMs);

  /**
   * A slot of the endpoint's bulkhead. A full queue, or a deadline that passes in it, is `saturated`:
   * the pipeline answers 503 with Retry-After rather than letting callers hang.
   */
  const acquireSlot = async (signal: AbortSignal | undefined): Promise<() => void> => {
    const queuedAt = performance.now();
    try {
      return await limit.acquire(signal);
    } catch (error) {
      const why = error instanceof QueueFullError ? error.message : `no slot came free in ${Math.round(performance.now() - queuedAt)} ms`;
      throw new ProviderError(`${settings.name} is saturated: ${why}`, { kind: 'saturated', isRetryable: true, cause: error });
    }
  };

  /** One slot of the bulkhead per upstream call; the request's signal carries the pipeline's deadline. */
  const callUpstream = async <T>(signal: AbortSignal | undefined, call: (client: OpenAI) => Promise<T>): Promise<T> => {
    const release = await acquireSlot(signal);
    try {
      return await call(getClient());
    } catch (error) {
      throw toProviderError(error);
    } finally {
      release();
    }
  };

  /** A stream holds its slot of the bulkhead until it ends, not just until the headers arrive. */
  const stream = async (request: GenerationRequest): Promise<ModelStream> => {
    const release = await acquireSlot(request.signal);
    try {
      const { chunks, upstreamRequestId } = await streamWithOpenAISdk(getClient(), request, settings.maxTokensParameter);
      return modelStream(chunks, { upstreamRequestId, release, mapError: toProviderError });
    } catch (error) {
      release();
      throw toProviderError(error);
    }
  };

  // Whole answers take the upstream's JSON answer rather than collecting its stream: one body to parse
  // instead of a chunk per token, and completions-API prompts of one tick can share one call.
  const generate = async (request: GenerationRequest): Promise<GenerationResult> => {
    const startedAt = performance.now();
    const result = await callUpstream(request.signal, (openai) =>
      generateWithOpenAISdk(openai, request, settings.maxTokensParameter, settings.name),
    );
    return withLatency(result, Math.round(performance.now() - startedAt));
  };

  /** Completion-API prompts that share model and parameters go up in one call; everything else one by one. */
  const generateBatch = async (requests: readonly GenerationRequest[]): Promise<Array<GenerationResult | ProviderError>> => {
    const results: Array<GenerationResult | ProviderError> = new Array(requests.length);
    const groups = new Map<string, number[]>();
    requests.forEach((request, index) => {
      const key = request.model.api === 'completion' && !request.messages ? sharedCallKey(request, signalIds) : `single:${index}`;
      groups.set(key, [...(groups.get(key) ?? []), index]);
    });
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const group = indexes.map((index) => requests[index]!);
        const startedAt = performance.now();
        try {
          const answers =
            group.length === 1
              ? [await generate(group[0]!)]
              : (await callUpstream(group[0]!.signal, (openai) => generateCompletionsInOneCall(openai, group, settings.name))).map(
                  (answer) => withLatency(answer, Math.round(performance.now() - startedAt)),
                );
          answers.forEach((answer, position) => {
            results[indexes[position]!] = answer;
          });
        } catch (error) {
          const failure = error instanceof ProviderError ? error : mapSdkError(error, settings.name, settings.timeoutMs);
          for (const index of indexes) results[index] = failure;
        }
      }),
    );
    return results;
  };

  // Built once: every generation's routing looks its model up here, and a fresh copy of the list each time was
  // garbage and a new hidden class for every model of every provider without a key.
  let unconfiguredModels: readonly ModelDescriptor[] | undefined;
  const listModels = (): Promise<readonly ModelDescriptor[]> => {
    if (isConfigured()) return discovery.listModels();
    unconfiguredModels ??= settings.configuredModels.map((model) => ({ ...model, unavailableReason: settings.missingKeyReason }));
    return Promise.resolve(unconfiguredModels);
  };
  let index: { readonly list: readonly ModelDescriptor[]; readonly byId: ReadonlyMap<string, ModelDescriptor> } | undefined;

  return {
    name: settings.name,
    kind: settings.kind,
    listModels,
    /** A lookup in the current list, indexed once per list (the first of an id wins, as a search would find it). */
    async findModel(id) {
      const list = await listModels();
      if (index?.list !== list) {
        const byId = new Map<string, ModelDescriptor>();
        for (const model of list) if (!byId.has(model.id)) byId.set(model.id, model);
        index = { list, byId };
      }
      return index.byId.get(id);
    },
    stream,
    generate,
    generateBatch,
    queueDepth: () => limit.queued,
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
      await upstreamFetch.close();
    },
  };
}

/** Field by field: `{ ...result, latencyMs }` would be a new hidden class for every answer (Node 20's V8). */
function withLatency(result: Omit<GenerationResult, 'latencyMs'>, latencyMs: number): GenerationResult {
  const { text, finishReason, upstreamModel, usage, upstreamRequestId } = result;
  return { text, finishReason, upstreamModel, usage, upstreamRequestId, latencyMs };
}

/** Requests in one call must agree on everything but the prompt, their signal (deadline) included. */
function sharedCallKey(request: GenerationRequest, signalIds: WeakMap<AbortSignal, number>): string {
  let signalId = 0;
  if (request.signal) {
    signalId = signalIds.get(request.signal) ?? signalIds.set(request.signal, nextSignalId++).get(request.signal)!;
  }
  const stop = request.stop ?? [];
  return JSON.stringify([request.model.id, request.maxTokens, request.temperature, request.topP, request.seed ?? null, stop, signalId]);
}
let nextSignalId = 1;
