import { ApiError, generationError, modelNotFound, modelUnavailable, validationError } from '../errors/api-error';
import {
  ProviderError,
  type FinishReason,
  type GenerationResult,
  type ModelDescriptor,
  type TokenizerName,
} from '../providers/provider';
import type { ProviderRegistry, ResolvedModel } from '../providers/registry';
import { computeCost, sumCosts, type CostBreakdown } from './cost';
import type { GenerationLoader } from './generation-loader';
import {
  checkModelId,
  checkPrompt,
  checkPrompts,
  resolveParameters,
  type GenerationParameters,
  type RequestedParameters,
} from './generation-parameters';
import { countPromptTokens, countTextTokens } from './token-counter';

export interface GenerateInput extends RequestedParameters {
  readonly prompt: string;
  readonly modelId: string;
  readonly seed?: number | null;
}

export interface GenerateBatchInput extends RequestedParameters {
  readonly prompts: readonly string[];
  readonly modelId: string;
  readonly seed?: number | null;
}

/** Who is asking, for request ids and the per-request loader. */
export interface CallContext {
  readonly requestId: string;
  readonly generationLoader: GenerationLoader;
  readonly signal?: AbortSignal;
}

export type TokenSource = 'upstream' | 'tokenizer';

export interface TokenCounts {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens: number;
}

export interface GenerationMetadata {
  readonly finishReason: FinishReason;
  readonly provider: string;
  readonly upstreamModel: string;
  readonly requestId: string;
  readonly upstreamRequestId?: string;
  readonly tokenSource: TokenSource;
  readonly costUsd: CostBreakdown;
}

export interface GenerateOutcome {
  readonly text: string;
  readonly modelId: string;
  readonly prompt: string;
  readonly parameters: GenerationParameters;
  readonly metrics: TokenCounts & { readonly latencyMs: number };
  readonly metadata: GenerationMetadata;
  readonly timestamp: Date;
}

export interface BatchItemOutcome {
  readonly index: number;
  readonly prompt: string;
  readonly text: string | null;
  readonly success: boolean;
  readonly error: string | null;
  readonly metadata: (GenerationMetadata & TokenCounts & { readonly latencyMs: number }) | null;
}

export interface BatchOutcome {
  readonly results: readonly BatchItemOutcome[];
  readonly modelId: string;
  readonly parameters: GenerationParameters;
  readonly metrics: TokenCounts & {
    readonly totalLatencyMs: number;
    readonly successfulGenerations: number;
    readonly failedGenerations: number;
    readonly averageLatencyMs: number;
    readonly costUsd: CostBreakdown;
  };
  readonly timestamp: Date;
}

interface PreparedPrompt {
  readonly prompt: string;
  readonly inputTokenEstimate: number;
}

/** Validates generation requests, picks the provider, and turns its answers into metered results. */
export class GenerationService {
  constructor(private readonly registry: ProviderRegistry) {}

  async generate(input: GenerateInput, call: CallContext): Promise<GenerateOutcome> {
    const parameters = resolveParameters(input);
    const prompt = checkPrompt(input.prompt);
    const resolved = await this.resolveServingModel(input.modelId);
    const prepared = await prepare(resolved, prompt, 'prompt', parameters);
    const startedAt = performance.now();
    let result: GenerationResult;
    try {
      result = await call.generationLoader.load({
        provider: resolved.provider,
        request: { model: resolved.model, prompt, ...parameters, seed: input.seed ?? undefined, signal: call.signal },
      });
    } catch (error) {
      throw toApiError(error, resolved.model);
    }
    const latencyMs = Math.round(performance.now() - startedAt);
    const { counts, metadata } = meter(resolved.model, prepared, result, call.requestId);
    return {
      text: result.text,
      modelId: resolved.model.id,
      prompt,
      parameters,
      metrics: { ...counts, latencyMs },
      metadata,
      timestamp: new Date(),
    };
  }

  async generateBatch(input: GenerateBatchInput, call: CallContext): Promise<BatchOutcome> {
    const parameters = resolveParameters(input);
    const prompts = checkPrompts(input.prompts);
    const resolved = await this.resolveServingModel(input.modelId);
    const prepared: PreparedPrompt[] = [];
    for (const [index, prompt] of prompts.entries()) prepared.push(await prepare(resolved, prompt, `prompts[${index}]`, parameters));
    const startedAt = performance.now();
    const answers = await call.generationLoader.loadMany(
      prompts.map((prompt) => ({
        provider: resolved.provider,
        request: { model: resolved.model, prompt, ...parameters, seed: input.seed ?? undefined, signal: call.signal },
      })),
    );
    const totalLatencyMs = Math.round(performance.now() - startedAt);

    const results = answers.map((answer, index): BatchItemOutcome => {
      const prompt = prompts[index]!;
      if (answer instanceof Error) {
        const apiError = toApiError(answer, resolved.model);
        const reason = apiError.extensions.details ? `${apiError.message}: ${apiError.extensions.details}` : apiError.message;
        return { index, prompt, text: null, success: false, error: reason, metadata: null };
      }
      const { counts, metadata } = meter(resolved.model, prepared[index]!, answer, call.requestId);
      return {
        index,
        prompt,
        text: answer.text,
        success: true,
        error: null,
        metadata: { ...metadata, ...counts, latencyMs: answer.latencyMs },
      };
    });
    const succeeded = results.flatMap((item) => (item.metadata ? [item.metadata] : []));
    const sum = (pick: (item: (typeof succeeded)[number]) => number): number =>
      succeeded.reduce((total, item) => total + pick(item), 0);
    return {
      results,
      modelId: resolved.model.id,
      parameters,
      metrics: {
        totalLatencyMs,
        successfulGenerations: succeeded.length,
        failedGenerations: results.length - succeeded.length,
        averageLatencyMs: succeeded.length ? Math.round(sum((item) => item.latencyMs) / succeeded.length) : 0,
        inputTokens: sum((item) => item.inputTokens),
        outputTokens: sum((item) => item.outputTokens),
        totalTokens: sum((item) => item.totalTokens),
        costUsd: sumCosts(succeeded.map((item) => item.costUsd)),
      },
      timestamp: new Date(),
    };
  }

  private async resolveServingModel(modelId: string): Promise<ResolvedModel> {
    const found = await this.registry.findModel(checkModelId(modelId));
    if (!found) throw modelNotFound(modelId);
    if (found.model.unavailableReason !== undefined) throw modelUnavailable(modelId, found.model.unavailableReason);
    return found;
  }
}

/** Counts the prompt's tokens and refuses requests the model's context cannot hold. */
async function prepare(
  { model, provider }: ResolvedModel,
  prompt: string,
  field: string,
  parameters: GenerationParameters,
): Promise<PreparedPrompt> {
  let inputTokenEstimate: number;
  try {
    inputTokenEstimate =
      model.tokenizer === 'model' && provider.countPromptTokens
        ? await provider.countPromptTokens(model, prompt)
        : countPromptTokens(prompt, model.api, familyTokenizer(model));
  } catch (error) {
    throw toApiError(error, model);
  }
  const context = model.contextLength;
  if (context !== undefined) {
    const room = context - inputTokenEstimate;
    if (room < 1) {
      throw validationError(
        `${field} is too long for model "${model.id}"`,
        `${field} uses about ${inputTokenEstimate} tokens; the model's context_length is ${context}`,
      );
    }
    if (parameters.maxTokens > room) {
      throw validationError(
        `max_tokens is too large for model "${model.id}"`,
        `max_tokens must be at most ${room}: context_length ${context} minus about ${inputTokenEstimate} ${field} tokens`,
      );
    }
  }
  return { prompt, inputTokenEstimate };
}

/** Token counts from the upstream's usage when it reports it, otherwise from the model family's tokenizer. */
function meter(
  model: ModelDescriptor,
  prepared: PreparedPrompt,
  result: GenerationResult,
  requestId: string,
): { counts: TokenCounts; metadata: GenerationMetadata } {
  const inputTokens = result.usage?.inputTokens ?? prepared.inputTokenEstimate;
  const outputTokens = result.usage?.outputTokens ?? countTextTokens(result.text, familyTokenizer(model));
  return {
    counts: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
    metadata: {
      finishReason: result.finishReason,
      provider: model.provider,
      upstreamModel: result.upstreamModel,
      requestId,
      upstreamRequestId: result.upstreamRequestId,
      tokenSource: result.usage ? 'upstream' : 'tokenizer',
      costUsd: computeCost(model.pricing, inputTokens, outputTokens),
    },
  };
}

// A provider that counts with the model's own tokenizer always reports usage; this is only a fallback.
const familyTokenizer = (model: ModelDescriptor): TokenizerName => (model.tokenizer === 'model' ? 'cl100k_base' : model.tokenizer);

function toApiError(error: unknown, model: ModelDescriptor): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ProviderError) {
    if (error.kind === 'unavailable') return modelUnavailable(model.id, error.message);
    return generationError(`Generation with model "${model.id}" failed`, error.message);
  }
  return generationError(`Generation with model "${model.id}" failed`, 'the provider failed unexpectedly');
}
