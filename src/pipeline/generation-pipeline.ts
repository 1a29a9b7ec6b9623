import type { ApiError } from '../errors/api-error';
import type { FinishReason, GenerationRequest, GenerationResult } from '../providers/provider';
import type { ProviderRegistry, ResolvedModel } from '../providers/registry';
import {
  checkPrompt,
  checkPrompts,
  resolveParameters,
  type GenerationParameters,
  type RequestedParameters,
} from '../services/generation-parameters';
import { admitPrompt, type AdmittedPrompt } from './admission/context-window';
import type { CallContext } from './call-context';
import { sumCosts, type CostBreakdown } from './cost';
import { Deadline } from './deadline';
import type { GenerationRecorder, GenerationSource } from './generation-record';
import { meter, type TokenCounts } from './meter';
import { AttemptsExhausted, routeModel, toApiError, withRetries, type RetryPolicy } from './routing';

/*
 * The one path every generation takes, whichever surface asked for it:
 *
 *   1. validate   the request's own parameters (one rule set for every surface)
 *   2. route      the model id to the provider that serves it
 *   3. admit      the prompt against the model's context (budget reservations join here)
 *   4. call       the provider through the request's DataLoader (prompts of one tick go upstream
 *                 together), under one deadline counted from admission, retried by one policy
 *   5. record     one GenerationRecord per prompt, succeeded or failed, to the recorder's listeners
 *
 * The caller arrives in the CallContext; rate limits are counted where each request enters (the
 * GraphQL resolvers' declarative layer, or a hand-written route), with the same engine.
 */

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

export interface GenerationMetadata {
  readonly finishReason: FinishReason;
  readonly provider: string;
  readonly upstreamModel: string;
  readonly requestId: string;
  readonly upstreamRequestId?: string;
  readonly tokenSource: 'upstream' | 'tokenizer';
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

export interface PipelineSettings {
  readonly registry: ProviderRegistry;
  readonly recorder: GenerationRecorder;
  /** UPSTREAM_TIMEOUT_MS: from admission to the answer, queueing and retries included. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
}

/** One prompt's way through steps 4 and 5: its answer (or typed error) and what was recorded. */
type Settled =
  | {
      readonly ok: true;
      readonly text: string;
      readonly counts: TokenCounts;
      readonly metadata: GenerationMetadata;
      readonly latencyMs: number;
    }
  | { readonly ok: false; readonly error: ApiError };

export class GenerationPipeline {
  constructor(private readonly settings: PipelineSettings) {}

  get recorder(): GenerationRecorder {
    return this.settings.recorder;
  }

  async generate(input: GenerateInput, call: CallContext): Promise<GenerateOutcome> {
    const parameters = resolveParameters(input);
    const prompt = checkPrompt(input.prompt);
    const route = await routeModel(this.settings.registry, input.modelId);
    const admitted = await admitPrompt(route, prompt, 'prompt', parameters);
    const [settled] = await this.run(route, [admitted], parameters, input.seed, call, 'generate');
    if (!settled!.ok) throw settled!.error;
    const { text, counts, metadata, latencyMs } = settled!;
    return { text, modelId: route.model.id, prompt, parameters, metrics: { ...counts, latencyMs }, metadata, timestamp: new Date() };
  }

  async generateBatch(input: GenerateBatchInput, call: CallContext): Promise<BatchOutcome> {
    const parameters = resolveParameters(input);
    const prompts = checkPrompts(input.prompts);
    const route = await routeModel(this.settings.registry, input.modelId);
    const admitted: AdmittedPrompt[] = [];
    for (const [index, prompt] of prompts.entries()) admitted.push(await admitPrompt(route, prompt, `prompts[${index}]`, parameters));
    const startedAt = performance.now();
    const settled = await this.run(route, admitted, parameters, input.seed, call, 'batch');
    const totalLatencyMs = Math.round(performance.now() - startedAt);

    const results = settled.map((answer, index): BatchItemOutcome => {
      const prompt = prompts[index]!;
      if (!answer.ok) {
        const { message, extensions } = answer.error;
        return {
          index,
          prompt,
          text: null,
          success: false,
          error: extensions.details ? `${message}: ${extensions.details}` : message,
          metadata: null,
        };
      }
      return {
        index,
        prompt,
        text: answer.text,
        success: true,
        error: null,
        metadata: { ...answer.metadata, ...answer.counts, latencyMs: answer.latencyMs },
      };
    });
    const succeeded = results.flatMap((item) => (item.metadata ? [item.metadata] : []));
    const sum = (pick: (item: (typeof succeeded)[number]) => number): number => succeeded.reduce((total, item) => total + pick(item), 0);
    return {
      results,
      modelId: route.model.id,
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

  /** Steps 4 and 5 for admitted prompts: every prompt settles (never throws) and is recorded once. */
  private async run(
    route: ResolvedModel,
    admitted: readonly AdmittedPrompt[],
    parameters: GenerationParameters,
    seed: number | null | undefined,
    call: CallContext,
    source: GenerationSource,
  ): Promise<Settled[]> {
    const { model, provider } = route;
    const deadline = new Deadline(this.settings.timeoutMs, call.signal);
    try {
      return await Promise.all(
        admitted.map(async (prompt): Promise<Settled> => {
          const request: GenerationRequest = {
            model,
            prompt: prompt.prompt,
            ...parameters,
            seed: seed ?? undefined,
            signal: deadline.signal,
          };
          const startedAt = performance.now();
          let result: GenerationResult;
          let attempts: number;
          try {
            ({ value: result, attempts } = await withRetries(
              () => call.generationLoader.load({ provider, request }),
              this.settings.retry,
              deadline,
            ));
          } catch (failure) {
            const exhausted = failure instanceof AttemptsExhausted ? failure : undefined;
            const error = toApiError(exhausted?.lastError ?? failure, model, deadline);
            this.record(route, call, source, {
              status: call.signal?.aborted ? 'cancelled' : 'failed',
              error: error.extensions.code,
              attempts: exhausted?.attempts ?? 1,
              latencyMs: Math.round(performance.now() - startedAt),
              inputTokens: prompt.inputTokens ?? 0,
            });
            return { ok: false, error };
          }
          const { counts, metadata } = meter(model, prompt, result, call.requestId);
          this.record(route, call, source, {
            status: 'succeeded',
            error: null,
            attempts,
            latencyMs: result.latencyMs,
            finishReason: result.finishReason,
            upstreamModel: result.upstreamModel,
            inputTokens: counts.inputTokens,
            outputTokens: counts.outputTokens,
            costUsd: metadata.costUsd,
          });
          return { ok: true, text: result.text, counts, metadata, latencyMs: result.latencyMs };
        }),
      );
    } finally {
      deadline.dispose();
    }
  }

  private record(
    { model }: ResolvedModel,
    call: CallContext,
    source: GenerationSource,
    outcome: {
      status: 'succeeded' | 'failed' | 'cancelled';
      error: ApiError['extensions']['code'] | null;
      attempts: number;
      latencyMs: number;
      inputTokens: number;
      outputTokens?: number;
      finishReason?: FinishReason;
      upstreamModel?: string;
      costUsd?: CostBreakdown;
    },
  ): void {
    this.settings.recorder.record({
      requestId: call.requestId,
      caller: call.caller,
      source,
      modelId: model.id,
      provider: model.provider,
      upstreamModel: outcome.upstreamModel ?? model.upstreamModel,
      status: outcome.status,
      error: outcome.error,
      finishReason: outcome.finishReason ?? null,
      inputTokens: outcome.inputTokens,
      outputTokens: outcome.outputTokens ?? 0,
      costUsd: outcome.costUsd ?? { input: 0, output: 0, total: 0 },
      latencyMs: outcome.latencyMs,
      attempts: outcome.attempts,
      createdAt: new Date(),
    });
  }
}
