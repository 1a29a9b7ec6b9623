import { ProviderError, type FinishReason, type GenerationRequest, type GenerationResult } from '../provider';
import type { LlamaContext, LlamaContextSequence, LlamaModel, NodeLlamaCpp, Token } from './llama-runtime';
import { SequencePool } from './sequence-pool';

export interface LoadedModelSettings {
  readonly sequences: number;
  readonly threads: number;
  readonly contextSize: number;
  readonly batchSize: number;
  /** Use the model's chat template: prompts become one user message in it. */
  readonly chat: boolean;
}

interface PromptEncoding {
  readonly tokens: Token[];
  readonly stopSequences: readonly Token[][];
}

type ChatWrapper = ReturnType<NodeLlamaCpp['resolveChatWrapper']>;

/**
 * One GGUF model in memory: one context whose sequences serve concurrent requests, so their
 * tokens decode together in shared batches.
 */
export class LoadedModel {
  private constructor(
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly pool: SequencePool<LlamaContextSequence>,
    private readonly chatWrapper: ChatWrapper | undefined,
  ) {}

  static async load(runtime: NodeLlamaCpp, model: LlamaModel, settings: LoadedModelSettings): Promise<LoadedModel> {
    const context = await model.createContext({
      sequences: settings.sequences,
      contextSize: Math.min(settings.contextSize, model.trainContextSize),
      threads: settings.threads,
      batchSize: settings.batchSize,
    });
    const sequences = Array.from({ length: settings.sequences }, () => context.getSequence());
    // Resolved once: resolving a chat wrapper per request costs hundreds of milliseconds of blocking CPU.
    const chatWrapper = settings.chat ? runtime.resolveChatWrapper(model) : undefined;
    return new LoadedModel(model, context, new SequencePool(sequences), chatWrapper);
  }

  /** Tokens one sequence can hold: prompt plus generated tokens. */
  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Exactly the tokens the model will be fed for this prompt, BOS and chat template included. */
  countPromptTokens(prompt: string): number {
    return this.encode(prompt).tokens.length;
  }

  async generate(request: GenerationRequest): Promise<GenerationResult> {
    const encoding = this.encode(request.prompt);
    if (encoding.tokens.length + request.maxTokens > this.contextSize) {
      throw new ProviderError(
        `prompt (${encoding.tokens.length} tokens) plus max_tokens (${request.maxTokens}) exceed the context of ${this.contextSize} tokens`,
        { kind: 'invalid_request' },
      );
    }
    const startedAt = performance.now();
    let sequence: LlamaContextSequence | undefined;
    try {
      sequence = await this.pool.acquire(request.signal);
      await sequence.clearHistory();
      const { tokens, finishReason } = await this.decode(sequence, encoding, request);
      const textTokens = finishReason === 'stop' ? withoutStop(tokens, encoding.stopSequences, this.model) : tokens;
      return {
        text: this.model.detokenize(textTokens),
        finishReason,
        upstreamModel: request.model.upstreamModel,
        // Every sampled token counts, including an end-of-generation token or a stop sequence that is not part of the text.
        usage: { inputTokens: encoding.tokens.length, outputTokens: tokens.length },
        latencyMs: Math.round(performance.now() - startedAt),
      };
    } catch (error) {
      if (error instanceof ProviderError) throw error;
      if (request.signal?.aborted) throw new ProviderError('the client went away', { kind: 'timeout', cause: error });
      throw new ProviderError(`local inference failed: ${(error as Error).message}`, { kind: 'upstream', cause: error });
    } finally {
      if (sequence) this.pool.release(sequence);
    }
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }

  private async decode(
    sequence: LlamaContextSequence,
    encoding: PromptEncoding,
    request: GenerationRequest,
  ): Promise<{ tokens: Token[]; finishReason: FinishReason }> {
    const generated: Token[] = [];
    const iterator = sequence.evaluate(encoding.tokens, {
      temperature: request.temperature,
      topP: request.topP,
      seed: request.seed,
      yieldEogToken: true,
    });
    try {
      for await (const token of iterator) {
        generated.push(token);
        if (this.model.isEogToken(token) || endsWithAny(generated, encoding.stopSequences)) {
          return { tokens: generated, finishReason: 'stop' };
        }
        if (generated.length >= request.maxTokens) return { tokens: generated, finishReason: 'length' };
        // A client that went away frees its sequence for the next request.
        if (request.signal?.aborted) throw request.signal.reason;
      }
      return { tokens: generated, finishReason: 'stop' };
    } finally {
      await iterator.return();
    }
  }

  private encode(prompt: string): PromptEncoding {
    if (this.chatWrapper) {
      const state = this.chatWrapper.generateContextState({
        chatHistory: [
          { type: 'user', text: prompt },
          { type: 'model', response: [] },
        ],
      });
      return {
        tokens: state.contextText.tokenize(this.model.tokenizer),
        stopSequences: state.stopGenerationTriggers
          .map((trigger) => trigger.tokenize(this.model.tokenizer))
          .filter((tokens) => tokens.length > 0),
      };
    }
    const text = this.model.tokenize(prompt, false);
    const bos = this.model.tokens.bos;
    const tokens = this.model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...text] : text;
    return { tokens, stopSequences: [] };
  }
}

function endsWithAny(tokens: readonly Token[], sequences: readonly Token[][]): boolean {
  return sequences.some(
    (stop) => stop.length <= tokens.length && stop.every((token, index) => tokens[tokens.length - stop.length + index] === token),
  );
}

function withoutStop(tokens: readonly Token[], sequences: readonly Token[][], model: LlamaModel): Token[] {
  const last = tokens[tokens.length - 1];
  if (last !== undefined && model.isEogToken(last)) return tokens.slice(0, -1);
  const stop = sequences.find((candidate) => endsWithAny(tokens, [candidate]));
  return stop ? tokens.slice(0, tokens.length - stop.length) : [...tokens];
}
