import type { Logger } from '../../logger';
import { modelStream } from '../model-stream';
import {
  ProviderError,
  type GenerationRequest,
  type GenerationResult,
  type LanguageModelProvider,
  type ModelDescriptor,
  type ProviderHealth,
} from '../provider';
import { loadLlamaRuntime } from './llama-runtime';
import { LoadedModel } from './loaded-model';
import { ModelDirectory, type LocalModelFile } from './model-directory';
import { ModelSlots, type ModelLease } from './model-slots';

export interface LocalProviderSettings {
  readonly modelsDir: string;
  readonly threads: number;
  readonly gpu: boolean;
  readonly sequences: number;
  readonly contextSize: number;
  readonly batchSize: number;
  readonly preload: readonly string[];
  readonly idleUnloadMs: number;
}

/** Where the local provider reports model loads and unloads. */
export type LocalProviderLogger = Pick<Logger, 'info' | 'warn' | 'error'>;

/** Fine-tuned GGUF models run in-process with llama.cpp; every `*.gguf` in the models directory is one. */
export function createLocalProvider(settings: LocalProviderSettings, logger?: LocalProviderLogger): LanguageModelProvider {
  const directory = new ModelDirectory(settings.modelsDir);
  let preloading = 0;
  let sweeper: NodeJS.Timeout | undefined;

  const describe = (file: LocalModelFile): ModelDescriptor => {
    const { header, card } = file;
    const failure = slots.failure(file.id, file.version);
    const chat = header?.hasChatTemplate ?? false;
    const contextLength = Math.min(card?.context_length ?? header?.contextLength ?? settings.contextSize, settings.contextSize);
    return {
      id: file.id,
      upstreamModel: file.id,
      name: card?.name ?? header?.name ?? file.id,
      type: 'fine-tuned',
      provider: 'local',
      description: card?.description,
      contextLength,
      capabilities: card?.capabilities ?? (chat ? ['text-generation', 'chat'] : ['text-generation']),
      api: chat ? 'chat' : 'completion',
      tokenizer: 'model',
      pricing: card?.pricing && {
        inputPerMillion: card.pricing.input_per_million,
        outputPerMillion: card.pricing.output_per_million,
      },
      baseModel: card?.base_model,
      fineTuning: card?.fine_tuning && {
        dataset: card.fine_tuning.dataset,
        createdAt: card.fine_tuning.created_at,
        evaluation: card.fine_tuning.evaluation,
      },
      unavailableReason: file.problem ?? (failure instanceof Error ? failure.message : undefined),
    };
  };

  /** The file as it is now, when it can serve. */
  const locateFile = async (id: string): Promise<LocalModelFile> => {
    const file = await directory.find(id);
    if (!file) throw new ProviderError(`local model "${id}" is no longer in ${settings.modelsDir}`, { kind: 'unavailable' });
    if (file.problem) throw new ProviderError(file.problem, { kind: 'unavailable' });
    return file;
  };

  const loadFile = async (id: string, file: LocalModelFile): Promise<LoadedModel> => {
    try {
      const { module, llama } = await loadLlamaRuntime({ gpu: settings.gpu });
      const model = await llama.loadModel({ modelPath: file.path, gpuLayers: settings.gpu ? 'auto' : 0 });
      try {
        return await LoadedModel.load(module, model, {
          sequences: settings.sequences,
          threads: settings.threads,
          contextSize: Math.min(file.card?.context_length ?? file.header?.contextLength ?? settings.contextSize, settings.contextSize),
          batchSize: settings.batchSize,
          chat: file.header?.hasChatTemplate ?? false,
        });
      } catch (error) {
        await model.dispose();
        throw error;
      }
    } catch (error) {
      throw new ProviderError(`cannot load ${id}: ${(error as Error).message}`, { kind: 'unavailable', cause: error });
    }
  };

  const slots = new ModelSlots<LocalModelFile, LoadedModel>({
    locate: locateFile,
    load: loadFile,
    dispose: (model) => model.dispose(),
    observe: (event) => {
      const fields = { model: event.id, version: event.version };
      const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));
      if (event.type === 'loaded') logger?.info({ ...fields, loadMs: event.loadMs }, 'local model loaded');
      else if (event.type === 'unloaded') logger?.info({ ...fields, reason: event.reason }, 'local model unloaded');
      else if (event.type === 'load_failed') logger?.warn({ ...fields, err: message(event.error) }, 'local model failed to load');
      else logger?.error({ ...fields, reason: event.reason, err: message(event.error) }, 'local model failed to unload');
    },
  });

  /** Loads on first use and keeps the model; a file replaced on disk is loaded afresh, once. */
  const acquire = async (id: string): Promise<ModelLease<LoadedModel>> => {
    const file = await locateFile(id).catch((error: unknown) => {
      // The loaded model no longer matches the disk: let it go once its generations end.
      void slots.refresh(id);
      throw error;
    });
    return slots.acquire(id, file.version);
  };

  const withModel = async <T>(id: string, work: (model: LoadedModel) => Promise<T> | T): Promise<T> => {
    const lease = await acquire(id);
    try {
      return await work(lease.model);
    } finally {
      lease.release();
    }
  };

  const startPreloading = (): void => {
    if (settings.preload.length === 0) return;
    preloading += 1;
    void directory
      .scan()
      .then((files) => {
        const wanted = settings.preload.includes('*') ? files : files.filter((file) => settings.preload.includes(file.id));
        return Promise.allSettled(wanted.map((file) => acquire(file.id).then((lease) => lease.release())));
      })
      .finally(() => {
        preloading -= 1;
      });
  };

  if (settings.idleUnloadMs > 0) {
    sweeper = setInterval(() => void slots.unloadIdle(settings.idleUnloadMs), Math.min(settings.idleUnloadMs, 60_000));
    sweeper.unref();
  }
  startPreloading();

  let lastCount = 0;
  return {
    name: 'local',
    kind: 'local',
    async listModels() {
      const files = await directory.scan();
      const versions = new Map(files.map((file) => [file.id, file.version]));
      // A model whose file is gone or changed retires; one still generating is disposed when it ends.
      for (const slot of slots.views()) {
        if (slot.state !== 'retiring' && versions.get(slot.id) !== slot.version) void slots.refresh(slot.id);
      }
      lastCount = files.length;
      return files.map(describe);
    },
    async findModel(id) {
      const file = await directory.find(id);
      return file && describe(file);
    },
    /** The model's lease is held while the stream runs, so it is not unloaded under it. */
    async stream(request: GenerationRequest) {
      const lease = await acquire(request.model.id);
      try {
        const stream = await lease.model.stream(request);
        return modelStream(stream, {
          upstreamRequestId: stream.upstreamRequestId,
          release: () => lease.release(),
          mapError: (error) =>
            error instanceof ProviderError ? error : new ProviderError(String(error), { kind: 'upstream', cause: error }),
        });
      } catch (error) {
        lease.release();
        throw error;
      }
    },
    generate(request: GenerationRequest): Promise<GenerationResult> {
      return withModel(request.model.id, (model) => model.generate(request));
    },
    async generateBatch(requests) {
      const asProviderError = (error: unknown): ProviderError =>
        error instanceof ProviderError
          ? error
          : new ProviderError(`local inference failed: ${(error as Error).message}`, { kind: 'upstream', cause: error });
      // Resolve each model once, then start every prompt in the same tick: prompts that start together
      // share every decode batch from the first token on.
      const ids = [...new Set(requests.map((request) => request.model.id))];
      const leases = new Map(await Promise.all(ids.map(async (id) => [id, await acquire(id).catch(asProviderError)] as const)));
      try {
        return await Promise.all(
          requests.map((request) => {
            const lease = leases.get(request.model.id)!;
            return lease instanceof ProviderError ? lease : lease.model.generate(request).catch(asProviderError);
          }),
        );
      } finally {
        for (const lease of leases.values()) if (!(lease instanceof ProviderError)) lease.release();
      }
    },
    countPromptTokens(model, prompt, messages) {
      return withModel(model.id, (loaded) => loaded.countPromptTokens(prompt, messages));
    },
    health(): ProviderHealth {
      return {
        name: 'local',
        kind: 'local',
        state: 'up',
        detail: preloading > 0 ? 'preloading models' : undefined,
        modelCount: lastCount,
        ready: preloading === 0,
      };
    },
    async close() {
      directory.close();
      if (sweeper) clearInterval(sweeper);
      await slots.close();
    },
  };
}
