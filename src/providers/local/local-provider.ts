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

interface ModelSlot {
  readonly version: string;
  loading?: Promise<LoadedModel>;
  loaded?: LoadedModel;
  failure?: string;
}

/** Fine-tuned GGUF models run in-process with llama.cpp; every `*.gguf` in the models directory is one. */
export function createLocalProvider(settings: LocalProviderSettings): LanguageModelProvider {
  const directory = new ModelDirectory(settings.modelsDir);
  const slots = new Map<string, ModelSlot>();
  let preloading = 0;
  let sweeper: NodeJS.Timeout | undefined;

  const describe = (file: LocalModelFile): ModelDescriptor => {
    const { header, card } = file;
    const slot = slots.get(file.id);
    const failure = slot?.version === file.version ? slot.failure : undefined;
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
      unavailableReason: file.problem ?? failure,
    };
  };

  const findFile = async (id: string): Promise<LocalModelFile> => {
    const file = await directory.find(id);
    if (!file) throw new ProviderError(`local model "${id}" is no longer in ${settings.modelsDir}`, { kind: 'unavailable' });
    if (file.problem) throw new ProviderError(file.problem, { kind: 'unavailable' });
    return file;
  };

  /** Loads on first use and keeps the model; a file replaced on disk is loaded afresh. */
  const acquire = async (id: string): Promise<LoadedModel> => {
    const file = await findFile(id);
    let slot = slots.get(id);
    if (slot && slot.version !== file.version) {
      await unload(id);
      slot = undefined;
    }
    if (!slot) {
      slot = { version: file.version };
      slots.set(id, slot);
    }
    if (slot.failure) throw new ProviderError(slot.failure, { kind: 'unavailable' });
    if (slot.loaded) return slot.loaded;
    const current = slot;
    current.loading ??= load(file).then(
      (loaded) => {
        current.loaded = loaded;
        return loaded;
      },
      (error: unknown) => {
        current.failure = `cannot load ${file.id}: ${(error as Error).message}`;
        current.loading = undefined;
        throw new ProviderError(current.failure, { kind: 'unavailable', cause: error });
      },
    );
    return current.loading;
  };

  const load = async (file: LocalModelFile): Promise<LoadedModel> => {
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
  };

  const unload = async (id: string): Promise<void> => {
    const slot = slots.get(id);
    slots.delete(id);
    const loaded = slot?.loaded ?? (await slot?.loading?.catch(() => undefined));
    await loaded?.dispose();
  };

  const generate = async (request: GenerationRequest): Promise<GenerationResult> => {
    const loaded = await acquire(request.model.id);
    return loaded.generate(request);
  };

  const startPreloading = (): void => {
    if (settings.preload.length === 0) return;
    preloading += 1;
    void directory
      .scan()
      .then((files) => {
        const wanted = settings.preload.includes('*') ? files : files.filter((file) => settings.preload.includes(file.id));
        return Promise.allSettled(wanted.map((file) => acquire(file.id)));
      })
      .finally(() => {
        preloading -= 1;
      });
  };

  if (settings.idleUnloadMs > 0) {
    sweeper = setInterval(() => {
      const now = Date.now();
      for (const [id, slot] of slots) {
        if (slot.loaded && !slot.loaded.busy && now - slot.loaded.lastUsedAt >= settings.idleUnloadMs) void unload(id);
      }
    }, Math.min(settings.idleUnloadMs, 60_000));
    sweeper.unref();
  }
  startPreloading();

  let lastCount = 0;
  return {
    name: 'local',
    kind: 'local',
    async listModels() {
      const files = await directory.scan();
      const known = new Set(files.map((file) => file.id));
      for (const id of slots.keys()) if (!known.has(id)) void unload(id);
      lastCount = files.length;
      return files.map(describe);
    },
    async findModel(id) {
      const file = await directory.find(id);
      return file && describe(file);
    },
    generate,
    async generateBatch(requests) {
      const asProviderError = (error: unknown): ProviderError =>
        error instanceof ProviderError
          ? error
          : new ProviderError(`local inference failed: ${(error as Error).message}`, { kind: 'upstream', cause: error });
      // Resolve each model once, then start every prompt in the same tick: prompts that start together
      // share every decode batch from the first token on.
      const ids = [...new Set(requests.map((request) => request.model.id))];
      const loaded = new Map(await Promise.all(ids.map(async (id) => [id, await acquire(id).catch(asProviderError)] as const)));
      return Promise.all(
        requests.map((request) => {
          const model = loaded.get(request.model.id)!;
          return model instanceof ProviderError ? model : model.generate(request).catch(asProviderError);
        }),
      );
    },
    async countPromptTokens(model, prompt) {
      return (await acquire(model.id)).countPromptTokens(prompt);
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
      if (sweeper) clearInterval(sweeper);
      await Promise.all([...slots.keys()].map(unload));
    },
  };
}
