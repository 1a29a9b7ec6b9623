import { collectStream, modelStream } from '../model-stream';
import {
  ProviderError,
  type ChatMessage,
  type FinishReason,
  type GenerationRequest,
  type GenerationResult,
  type ModelStream,
  type StreamPart,
} from '../provider';
import type { LlamaContext, LlamaContextSequence, LlamaModel, NodeLlamaCpp, Token } from './llama-runtime';
import { SequencePool } from './sequence-pool';
import { heldBackLength } from './stop-text';

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
    /** For conversations sent to a model without a chat template of its own. */
    private readonly generalChatWrapper: () => ChatWrapper,
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
    let general: ChatWrapper | undefined;
    const generalChatWrapper = (): ChatWrapper => (general ??= new runtime.GeneralChatWrapper());
    return new LoadedModel(model, context, new SequencePool(sequences), chatWrapper, generalChatWrapper);
  }

  /** Tokens one sequence can hold: prompt plus generated tokens. */
  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Exactly the tokens the model will be fed for this prompt (or conversation), BOS and chat template included. */
  countPromptTokens(prompt: string, messages?: readonly ChatMessage[]): number {
    return this.encode(prompt, messages).tokens.length;
  }

  /** Resolves once a sequence is free and the prompt fits; the parts follow as llama.cpp samples tokens. */
  async stream(request: GenerationRequest): Promise<ModelStream> {
    const encoding = this.encode(request.prompt, request.messages);
    if (encoding.tokens.length + request.maxTokens > this.contextSize) {
      throw new ProviderError(
        `prompt (${encoding.tokens.length} tokens) plus max_tokens (${request.maxTokens}) exceed the context of ${this.contextSize} tokens`,
        { kind: 'invalid_request' },
      );
    }
    let sequence: LlamaContextSequence | undefined;
    try {
      sequence = await this.pool.acquire(request.signal);
      await sequence.clearHistory();
    } catch (error) {
      if (sequence) this.pool.release(sequence);
      throw this.failure(error, request);
    }
    const held = sequence;
    return modelStream(this.decode(held, encoding, request), {
      // The sequence goes back to the pool the moment the stream ends, fails or is abandoned.
      release: () => this.pool.release(held),
      mapError: (error) => this.failure(error, request),
    });
  }

  async generate(request: GenerationRequest): Promise<GenerationResult> {
    const startedAt = performance.now();
    return collectStream(await this.stream(request), startedAt);
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }

  private failure(error: unknown, request: GenerationRequest): ProviderError {
    if (error instanceof ProviderError) return error;
    if (request.signal?.aborted) return new ProviderError('the client went away', { kind: 'timeout', cause: error });
    return new ProviderError(`local inference failed: ${(error as Error).message}`, { kind: 'upstream', cause: error });
  }

  /**
   * Samples tokens and yields the text they add. Text that may still turn into a stop (a chat template's
   * end trigger, a caller's stop string) or that ends inside a UTF-8 character is held back until the
   * next token decides; the stop itself is never sent. Every sampled token is counted in the usage.
   */
  private async *decode(sequence: LlamaContextSequence, encoding: PromptEncoding, request: GenerationRequest): AsyncGenerator<StreamPart> {
    const generated: Token[] = [];
    const stopTexts = request.stop ?? [];
    let sent = 0;
    let finishReason: FinishReason = 'stop';
    const iterator = sequence.evaluate(encoding.tokens, {
      temperature: request.temperature,
      topP: request.topP,
      seed: request.seed,
      yieldEogToken: true,
    });
    try {
      for await (const token of iterator) {
        generated.push(token);
        const stopped = this.model.isEogToken(token) || endsWithAny(generated, encoding.stopSequences);
        const full = this.model.detokenize(stopped ? withoutStop(generated, encoding.stopSequences, this.model) : generated);
        const stopAt = firstStopAt(full, stopTexts);
        if (stopped || stopAt >= 0) {
          const text = stopAt >= 0 ? full.slice(0, stopAt) : full;
          if (text.length > sent) yield { type: 'text', text: text.slice(sent), outputTokens: generated.length };
          sent = text.length;
          break;
        }
        if (generated.length >= request.maxTokens) {
          finishReason = 'length';
          if (full.length > sent) yield { type: 'text', text: full.slice(sent), outputTokens: generated.length };
          break;
        }
        // Decoded again only when the last tokens may begin a chat template's stop: otherwise it is `full`.
        const pending = pendingStopTokens(generated, encoding.stopSequences);
        const safeLength = pending === 0 ? full.length : this.model.detokenize(generated.slice(0, generated.length - pending)).length;
        const ready = Math.min(safeLength, full.length - heldBackLength(full, stopTexts));
        if (ready > sent) {
          yield { type: 'text', text: full.slice(sent, ready), outputTokens: generated.length };
          sent = ready;
        }
        // A client that went away frees its sequence for the next request.
        if (request.signal?.aborted) throw request.signal.reason;
      }
      yield {
        type: 'finish',
        finishReason,
        upstreamModel: request.model.upstreamModel,
        usage: { inputTokens: encoding.tokens.length, outputTokens: generated.length },
      };
    } finally {
      await iterator.return();
    }
  }

  private encode(prompt: string, messages: readonly ChatMessage[] | undefined): PromptEncoding {
    const wrapper = messages ? (this.chatWrapper ?? this.generalChatWrapper()) : this.chatWrapper;
    if (wrapper) {
      const state = wrapper.generateContextState({
        chatHistory: [...chatHistoryOf(prompt, messages), { type: 'model', response: [] }],
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

type ChatHistoryItem = { type: 'system'; text: string } | { type: 'user'; text: string } | { type: 'model'; response: string[] };

function chatHistoryOf(prompt: string, messages: readonly ChatMessage[] | undefined): ChatHistoryItem[] {
  if (!messages) return [{ type: 'user', text: prompt }];
  return messages.map((message): ChatHistoryItem => {
    if (message.role === 'assistant') return { type: 'model', response: [message.content] };
    return { type: message.role, text: message.content };
  });
}

/** Where the first caller stop string starts in the text, or -1. */
function firstStopAt(text: string, stops: readonly string[]): number {
  let first = -1;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  return first;
}

/** How many trailing tokens could still be the start of a chat template's stop sequence. */
function pendingStopTokens(tokens: readonly Token[], sequences: readonly Token[][]): number {
  let longest = 0;
  for (const stop of sequences) {
    for (let length = Math.min(stop.length - 1, tokens.length); length > longest; length -= 1) {
      if (stop.slice(0, length).every((token, index) => tokens[tokens.length - length + index] === token)) {
        longest = length;
        break;
      }
    }
  }
  return longest;
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
