import { importEsm } from '../../esm-import';

/**
 * node-llama-cpp, imported on first use: the import alone costs about 0.5 s and 36 MB, which a
 * gateway without local models should not pay. It is an ES module with top-level await, so it can
 * only be reached through a real dynamic import (src/esm-import.ts).
 */
const importNodeLlamaCpp = () => importEsm<typeof import('node-llama-cpp', { with: { 'resolution-mode': 'import' }})>('node-llama-cpp');

export type NodeLlamaCpp = Awaited<ReturnType<typeof importNodeLlamaCpp>>;
export type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
export type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>;
export type LlamaContext = Awaited<ReturnType<LlamaModel['createContext']>>;
export type LlamaContextSequence = ReturnType<LlamaContext['getSequence']>;
export type Token = ReturnType<LlamaModel['tokenize']>[number];

export interface LlamaRuntimeSettings {
  /** Use a GPU backend when one is present; off by default (CPU is predictable and always there). */
  readonly gpu: boolean;
}

export interface LlamaRuntime {
  readonly module: NodeLlamaCpp;
  readonly llama: Llama;
}

let runtime: Promise<LlamaRuntime> | undefined;

export function loadLlamaRuntime(settings: LlamaRuntimeSettings): Promise<LlamaRuntime> {
  runtime ??= (async () => {
    const module = await importNodeLlamaCpp();
    // build: "never": use the prebuilt binaries shipped in the npm packages; never download or compile.
    const llama = await module.getLlama({
      build: 'never',
      gpu: settings.gpu ? 'auto' : false,
      logLevel: module.LlamaLogLevel.error,
    });
    return { module, llama };
  })();
  runtime.catch(() => {
    runtime = undefined;
  });
  return runtime;
}
