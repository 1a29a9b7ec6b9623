/**
 * The one interface every model backend implements. Providers know nothing of GraphQL or HTTP:
 * they list models and turn a prompt into text, raising ProviderError on failure.
 */

export type ModelType = 'commercial' | 'fine-tuned';

/** Chat models get the prompt as one user message (or the request's messages); completion models use the completions endpoint. */
export type ModelApi = 'chat' | 'completion';

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'error' | 'other';

/** Names of the tokenizers the gateway can count with when an upstream reports no usage. */
export type TokenizerName = 'cl100k_base' | 'o200k_base';

/** `model`: the provider counts with the model's own tokenizer (see `countPromptTokens`). */
export type TokenCounting = TokenizerName | 'model';

/** What a team says about a fine-tune in its model card. */
export interface FineTuningFacts {
  readonly dataset?: string;
  readonly createdAt?: string;
  readonly evaluation?: Readonly<Record<string, number>>;
}

export interface ModelPricing {
  /** USD per million input tokens. */
  readonly inputPerMillion: number;
  /** USD per million output tokens. */
  readonly outputPerMillion: number;
}

export interface ModelDescriptor {
  /** The id clients use. */
  readonly id: string;
  /** The id sent upstream (differs when an endpoint prefixes its ids). */
  readonly upstreamModel: string;
  readonly name: string;
  readonly type: ModelType;
  /** The provider instance's name: `openai`, or the name of an OpenAI-compatible endpoint. */
  readonly provider: string;
  readonly description?: string;
  readonly contextLength?: number;
  readonly capabilities: readonly string[];
  readonly api: ModelApi;
  readonly tokenizer: TokenCounting;
  readonly pricing?: ModelPricing;
  readonly baseModel?: string;
  readonly fineTuning?: FineTuningFacts;
  /** Undefined when the model can serve; otherwise why it cannot. */
  readonly unavailableReason?: string;
}

/** One turn of a conversation, as OpenAI's chat API and chat templates take it. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface GenerationRequest {
  readonly model: ModelDescriptor;
  /** The prompt; for a conversation, its transcript (what the ledger keeps and a completion model reads). */
  readonly prompt: string;
  /** A conversation: chat models get these messages, local models read them through their chat template. */
  readonly messages?: readonly ChatMessage[];
  /** Text at which generation stops; the stop text is not part of the answer. */
  readonly stop?: readonly string[];
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  /** Fixes sampling for reproducible output, where the backend supports it. */
  readonly seed?: number;
  readonly signal?: AbortSignal;
}

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export interface GenerationResult {
  readonly text: string;
  readonly finishReason: FinishReason;
  /** The model the upstream says answered (may carry a dated suffix). */
  readonly upstreamModel: string;
  /** Absent when the upstream did not report usage. */
  readonly usage?: TokenUsage;
  readonly upstreamRequestId?: string;
  /** Time spent on the upstream call, excluding any wait for a concurrency slot. */
  readonly latencyMs: number;
}

/** What a provider's stream yields: text as it is generated, then one `finish`. */
export type StreamPart =
  | {
      readonly type: 'text';
      readonly text: string;
      /** Tokens sampled so far, from providers that count them as they go (local models). */
      readonly outputTokens?: number;
    }
  | {
      readonly type: 'finish';
      readonly finishReason: FinishReason;
      /** The model the upstream says answered. */
      readonly upstreamModel: string;
      /** Absent when the upstream did not report usage. */
      readonly usage?: TokenUsage;
    };

/**
 * One generation as it happens. Iterating yields its parts; leaving the loop early (or aborting the
 * request's signal) stops the upstream call and frees whatever it held.
 */
export interface ModelStream extends AsyncIterable<StreamPart> {
  readonly upstreamRequestId?: string;
}

export type ProviderState = 'up' | 'down' | 'unconfigured';

export interface ProviderHealth {
  readonly name: string;
  readonly kind: string;
  readonly state: ProviderState;
  /** Why the provider is down or unconfigured; never contains secrets. */
  readonly detail?: string;
  readonly modelCount: number;
  /** False until the provider can serve what it has: first discovery done, preloads finished. */
  readonly ready: boolean;
}

export interface LanguageModelProvider {
  readonly name: string;
  readonly kind: string;
  /** The provider's models; never throws: an unreachable backend lists its models as unavailable. */
  listModels(): Promise<readonly ModelDescriptor[]>;
  /**
   * The basic call: one prompt as a stream. Resolves once the upstream has accepted the call (its
   * headers arrived, or a local sequence started), so a failure to start is an ordinary ProviderError
   * that may be retried; a failure after that is thrown by the iteration.
   */
  stream(request: GenerationRequest): Promise<ModelStream>;
  /** One prompt, answered whole; throws ProviderError. */
  generate(request: GenerationRequest): Promise<GenerationResult>;
  /**
   * Many prompts in one call, run concurrently under the provider's concurrency limit.
   * One failing prompt yields its ProviderError in its slot; the others still answer.
   */
  generateBatch(requests: readonly GenerationRequest[]): Promise<Array<GenerationResult | ProviderError>>;
  health(): ProviderHealth;
  /** Calls waiting for one of its connection slots (its bulkhead's queue), for providers that queue. */
  queueDepth?(): number;
  /** One model by id, for providers that can look it up without listing everything (a directory scan). */
  findModel?(id: string): Promise<ModelDescriptor | undefined>;
  /** Exact prompt tokens (as the model will see the prompt or the messages), for providers whose models count themselves. */
  countPromptTokens?(model: ModelDescriptor, prompt: string, messages?: readonly ChatMessage[]): Promise<number>;
  /** Stops background discovery. */
  close(): Promise<void>;
}

/**
 * - `unavailable`: the endpoint cannot be reached or cannot serve (refused or reset connection, no key,
 *   credentials rejected, model not served)
 * - `saturated`: the endpoint's bulkhead is full, or the request's time ran out waiting in its queue
 * - `timeout`: no answer in time, or the call was cancelled
 * - `upstream`: the upstream answered an HTTP error (429, 5xx, ...)
 * - `bad_response`: the answer could not be read (malformed JSON, a body cut short)
 * - `invalid_request`: the upstream refused the request itself (400, 413, 422): retrying cannot help
 */
export type ProviderErrorKind = 'unavailable' | 'saturated' | 'timeout' | 'upstream' | 'bad_response' | 'invalid_request';

export interface ProviderErrorOptions {
  readonly kind: ProviderErrorKind;
  readonly statusCode?: number;
  readonly isRetryable?: boolean;
  /** How long the upstream asked us to wait before trying again (its Retry-After). */
  readonly retryAfterMs?: number;
  /** What the upstream said was wrong with a refused request, scrubbed of anything like a key. */
  readonly reason?: string;
  readonly cause?: unknown;
}

/** A backend failure, described without upstream bodies (they could echo keys or prompts). */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly kind: ProviderErrorKind;
  /** The upstream HTTP status, when there was one. */
  readonly statusCode: number | undefined;
  readonly isRetryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly reason: string | undefined;

  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { cause: options.cause });
    this.kind = options.kind;
    this.statusCode = options.statusCode;
    this.isRetryable = options.isRetryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.reason = options.reason;
  }
}
