import { type ApiError, ledgerUnavailable } from '../errors/api-error';
import type { FinishReason, GenerationRequest, GenerationResult } from '../providers/provider';
import type { ProviderRegistry, ResolvedModel } from '../providers/registry';
import {
  checkPrompt,
  checkPrompts,
  resolveParameters,
  type GenerationParameters,
  type RequestedParameters,
} from '../services/generation-parameters';
import { affordableMaxTokens, type BudgetLookup, budgetRefusal, worstCaseUnits } from './admission/budget-hold';
import { admitPrompt, type AdmittedPrompt, inputTokensOf } from './admission/context-window';
import type { CallContext } from './call-context';
import { sumCosts, type CostBreakdown } from './cost';
import { Deadline } from './deadline';
import { BudgetRefusedError } from '../storage/budget-errors';
import { newGenerationId } from '../storage/generation-id';
import type { GenerationAttempt, GenerationOutcome, GenerationStart, LedgerSource, PromptRef } from '../storage/ledger-types';
import type { GenerationLedger } from './generation-ledger';
import type { GenerationRecorder } from './generation-record';
import { meter, type TokenCounts } from './meter';
import { AttemptsExhausted, routeModel, toApiError, withRetries, type FailedAttempt, type RetryPolicy } from './routing';

/*
 * The one path every generation takes, whichever surface asked for it:
 *
 *   1. validate   the request's own parameters (one rule set for every surface)
 *   2. route      the model id to the provider that serves it
 *   3. admit      the prompt against the model's context (budget reservations join here), then
 *                 start its row in the ledger: a ledger that cannot write refuses (503) before
 *                 anything is spent upstream
 *   4. call       the provider through the request's DataLoader (prompts of one tick go upstream
 *                 together), under one deadline counted from admission, retried by one policy
 *   5. record     finish the ledger row (the answer waits for its commit), then hand one
 *                 GenerationRecord per prompt, succeeded or failed, to the recorder's listeners
 *
 * The caller arrives in the CallContext; rate limits are counted where each request enters (the
 * GraphQL resolvers' declarative layer, or a hand-written route), with the same engine.
 */

/** Where a single generation comes from, as its ledger row records it (a plain `generate` when absent). */
export interface GenerationOrigin {
  /** `generate` (the default), `prompt`, `compare` or `evaluation`. */
  readonly source?: SingleSource;
  /** The prompt version the prompt was filled from. */
  readonly promptRef?: PromptRef | null;
  /** The evaluation run the generation is a cell (or a judge's grade) of. */
  readonly evaluationId?: string | null;
}

/** The sources of one-prompt generations; `batch` has its own entry point. */
export type SingleSource = Exclude<LedgerSource, 'batch'>;

export interface GenerateInput extends RequestedParameters {
  readonly prompt: string;
  readonly modelId: string;
  readonly seed?: number | null;
  readonly origin?: GenerationOrigin;
}

export interface GenerateBatchInput extends RequestedParameters {
  readonly prompts: readonly string[];
  readonly modelId: string;
  readonly seed?: number | null;
}

export interface GenerationMetadata {
  /** The ledger row's id. */
  readonly generationId: string;
  readonly finishReason: FinishReason;
  readonly provider: string;
  readonly upstreamModel: string;
  readonly requestId: string;
  readonly upstreamRequestId?: string;
  readonly tokenSource: 'upstream' | 'tokenizer';
  readonly costUsd: CostBreakdown;
  /** The prompt version the prompt was filled from, when one was. */
  readonly promptRef?: PromptRef;
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
  /** A failed prompt's metadata holds only its ledger row's id. */
  readonly metadata: (GenerationMetadata & TokenCounts & { readonly latencyMs: number }) | { readonly generationId: string };
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
  readonly ledger: GenerationLedger;
  /** Undefined when the ledger is off: no budget applies. */
  readonly budgets?: BudgetLookup;
  readonly recorder: GenerationRecorder;
  /** Told about ledger writes that failed; the caller sees only ledger_unavailable. */
  readonly onLedgerError: (error: unknown) => void;
  /** UPSTREAM_TIMEOUT_MS: from admission to the answer, queueing and retries included. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
}

/** One prompt's way through steps 4 and 5: its answer (or typed error) and its ledger row. */
type Settled =
  | {
      readonly ok: true;
      readonly generationId: string;
      readonly text: string;
      readonly counts: TokenCounts;
      readonly metadata: GenerationMetadata;
      readonly latencyMs: number;
    }
  | { readonly ok: false; readonly generationId: string; readonly error: ApiError };

const failedGenerationIds = new WeakMap<object, string>();

/** The ledger row of a generation that `generate` threw for, when one was started (null when it was refused before). */
export function failedGenerationId(error: unknown): string | null {
  return (typeof error === 'object' && error !== null && failedGenerationIds.get(error)) || null;
}

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
    const origin: RowOrigin = {
      source: input.origin?.source ?? 'generate',
      promptRef: input.origin?.promptRef ?? null,
      evaluationId: input.origin?.evaluationId ?? null,
    };
    const {
      settled: [settled],
      parameters: applied,
    } = await this.run(route, [admitted], parameters, input.seed, call, origin);
    if (!settled!.ok) {
      failedGenerationIds.set(settled!.error, settled!.generationId);
      throw settled!.error;
    }
    const { text, counts, latencyMs } = settled!;
    const metadata = origin.promptRef ? { ...settled!.metadata, promptRef: origin.promptRef } : settled!.metadata;
    // `applied`: max_tokens may have been lowered to what a budget's money left buys.
    return {
      text,
      modelId: route.model.id,
      prompt,
      parameters: applied,
      metrics: { ...counts, latencyMs },
      metadata,
      timestamp: new Date(),
    };
  }

  async generateBatch(input: GenerateBatchInput, call: CallContext): Promise<BatchOutcome> {
    const parameters = resolveParameters(input);
    const prompts = checkPrompts(input.prompts);
    const route = await routeModel(this.settings.registry, input.modelId);
    const admitted: AdmittedPrompt[] = [];
    for (const [index, prompt] of prompts.entries()) admitted.push(await admitPrompt(route, prompt, `prompts[${index}]`, parameters));
    const startedAt = performance.now();
    const { settled } = await this.run(route, admitted, parameters, input.seed, call, batchOrigin);
    const totalLatencyMs = Math.round(performance.now() - startedAt);

    const succeeded: Array<GenerationMetadata & TokenCounts & { readonly latencyMs: number }> = [];
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
          metadata: { generationId: answer.generationId },
        };
      }
      const metadata = { ...answer.metadata, ...answer.counts, latencyMs: answer.latencyMs };
      succeeded.push(metadata);
      return { index, prompt, text: answer.text, success: true, error: null, metadata };
    });
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

  /**
   * Step 3's ledger rows, then steps 4 and 5 for admitted prompts: once the rows are started every
   * prompt settles (never throws), and its row is finished before the answer.
   */
  private async run(
    route: ResolvedModel,
    admitted: readonly AdmittedPrompt[],
    parameters: GenerationParameters,
    seed: number | null | undefined,
    call: CallContext,
    origin: RowOrigin,
  ): Promise<{ readonly settled: Settled[]; readonly parameters: GenerationParameters }> {
    const { starts, parameters: applied } = await this.startRows(route, admitted, parameters, call, origin);
    const deadline = new Deadline(this.settings.timeoutMs, call.signal);
    try {
      const settled = await Promise.all(
        admitted.map((prompt, index) => this.generateOne(route, prompt, starts[index]!, applied, seed, call, deadline)),
      );
      return { settled, parameters: applied };
    } finally {
      deadline.dispose();
    }
  }

  /** Steps 4 and 5 for one started prompt: the provider call under the retry policy, then its ledger row finished. */
  private async generateOne(
    route: ResolvedModel,
    prompt: AdmittedPrompt,
    start: GenerationStart,
    parameters: GenerationParameters,
    seed: number | null | undefined,
    call: CallContext,
    deadline: Deadline,
  ): Promise<Settled> {
    const { model, provider } = route;
    const request: GenerationRequest = { model, prompt: prompt.prompt, ...parameters, seed: seed ?? undefined, signal: deadline.signal };
    const startedAt = performance.now();
    let result: GenerationResult;
    let failures: readonly FailedAttempt[];
    try {
      ({ value: result, failures } = await withRetries(
        () => call.generationLoader.load({ provider, request }),
        this.settings.retry,
        deadline,
      ));
    } catch (failure) {
      const exhausted = failure instanceof AttemptsExhausted ? failure : undefined;
      const error = toApiError(exhausted?.lastError ?? failure, model, deadline);
      const outcome: GenerationOutcome = {
        status: call.signal?.aborted ? 'cancelled' : 'failed',
        error: error.extensions.code,
        finishReason: null,
        text: null,
        // A failed row keeps the prompt's tokens: counted now if admission did not need to.
        inputTokens: inputTokensOf(model, prompt),
        outputTokens: 0,
        costUsd: 0,
        latencyMs: Math.round(performance.now() - startedAt),
        attempts: this.attempts(route, exhausted?.failures ?? [{ error: failure, latencyMs: 0 }], deadline),
      };
      const unrecorded = await this.finishRow(start, outcome, call, { input: 0, output: 0, total: 0 });
      return { ok: false, generationId: start.id, error: unrecorded ?? error };
    }
    const { counts, metadata } = meter(model, prompt, result, call.requestId, start.id);
    const outcome: GenerationOutcome = {
      status: 'succeeded',
      error: null,
      finishReason: result.finishReason,
      upstreamModel: result.upstreamModel,
      text: result.text,
      inputTokens: counts.inputTokens,
      outputTokens: counts.outputTokens,
      costUsd: metadata.costUsd.total,
      latencyMs: result.latencyMs,
      attempts: [
        ...this.attempts(route, failures, deadline),
        { provider: model.provider, upstreamModel: result.upstreamModel, error: null, latencyMs: result.latencyMs },
      ],
    };
    const unrecorded = await this.finishRow(start, outcome, call, metadata.costUsd);
    if (unrecorded) return { ok: false, generationId: start.id, error: unrecorded };
    return { ok: true, generationId: start.id, text: result.text, counts, metadata, latencyMs: result.latencyMs };
  }

  /**
   * Starts one ledger row per prompt, all committed before any upstream call. When budgets apply,
   * each prompt's worst case is held on all of them in the same transaction, all or nothing: a
   * budget without room refuses (402), except that a single `generate` whose prompt and at least one
   * output token still fit runs with the max_tokens the money left buys. A ledger that cannot write
   * refuses the request (503).
   */
  private async startRows(
    { model }: ResolvedModel,
    admitted: readonly AdmittedPrompt[],
    requested: GenerationParameters,
    call: CallContext,
    origin: RowOrigin,
  ): Promise<{ readonly starts: GenerationStart[]; readonly parameters: GenerationParameters }> {
    const createdAt = new Date();
    const startsWith = (parameters: GenerationParameters): GenerationStart[] =>
      admitted.map(
        (prompt): GenerationStart => ({
          id: newGenerationId(createdAt),
          requestId: call.requestId,
          caller: call.caller.name,
          team: call.caller.team ?? null,
          source: origin.source,
          modelId: model.id,
          provider: model.provider,
          upstreamModel: model.upstreamModel,
          prompt: prompt.prompt,
          promptRef: origin.promptRef,
          evaluationId: origin.evaluationId,
          parameters: { maxTokens: parameters.maxTokens, temperature: parameters.temperature, topP: parameters.topP },
          createdAt,
        }),
      );
    const budgetIds = await this.applyingBudgets(model, call);
    if (budgetIds.length > 0) return this.startHeld(model, admitted, requested, budgetIds, createdAt, startsWith, origin.source);

    const starts = startsWith(requested);
    const written = await Promise.allSettled(starts.map((start) => this.settings.ledger.start(start)));
    const refused = written.find((result) => result.status === 'rejected');
    if (!refused) return { starts, parameters: requested };
    this.settings.onLedgerError(refused.reason);
    // Rows that did commit are closed now rather than left for the next start-up to cancel.
    const closing = starts.flatMap((start, index) =>
      written[index]!.status === 'fulfilled' ? [this.settings.ledger.finish(start.id, notStarted(start)).catch(() => undefined)] : [],
    );
    await Promise.all(closing);
    throw ledgerUnavailable('the ledger database did not accept the generation; nothing was sent to the provider');
  }

  /** The budgets a priced model's generation counts against (unpriced models cost 0 and never hit one). Fails closed. */
  private async applyingBudgets(model: ResolvedModel['model'], call: CallContext): Promise<string[]> {
    const { budgets } = this.settings;
    if (!budgets || !model.pricing) return [];
    try {
      const applying = await budgets.applying({ caller: call.caller.name, team: call.caller.team ?? null, modelId: model.id });
      return applying.map((budget) => budget.id);
    } catch (error) {
      this.settings.onLedgerError(error);
      throw ledgerUnavailable('the budgets could not be read; nothing was sent to the provider');
    }
  }

  private async startHeld(
    model: ResolvedModel['model'],
    admitted: readonly AdmittedPrompt[],
    requested: GenerationParameters,
    budgetIds: readonly string[],
    createdAt: Date,
    startsWith: (parameters: GenerationParameters) => GenerationStart[],
    source: LedgerSource,
  ): Promise<{ readonly starts: GenerationStart[]; readonly parameters: GenerationParameters }> {
    const inputTokens = admitted.map((prompt) => inputTokensOf(model, prompt));
    const hold = async (parameters: GenerationParameters): Promise<GenerationStart[]> => {
      const starts = startsWith(parameters);
      const amountsUnits = inputTokens.map((tokens) => worstCaseUnits(model, tokens, parameters.maxTokens));
      await this.settings.ledger.startHeld(starts, { budgetIds, amountsUnits });
      return starts;
    };
    try {
      try {
        return { starts: await hold(requested), parameters: requested };
      } catch (error) {
        if (!(error instanceof BudgetRefusedError) || !mayLowerMaxTokens.has(source) || admitted.length !== 1) throw error;
        // One interactive generation that does not fit its worst case may still fit a shorter answer:
        // the least room left on any applying budget decides how many output tokens it buys.
        const rooms = await Promise.all(budgetIds.map((id) => this.settings.budgets!.get(id, createdAt)));
        const room = Math.min(...rooms.map((state) => state?.remainingUnits ?? Number.POSITIVE_INFINITY));
        const maxTokens = affordableMaxTokens(model, inputTokens[0]!, room, requested.maxTokens - 1);
        if (maxTokens < 1) throw error;
        const lowered = { ...requested, maxTokens };
        return { starts: await hold(lowered), parameters: lowered };
      }
    } catch (error) {
      if (error instanceof BudgetRefusedError) {
        const needed = inputTokens.reduce((sum, tokens) => sum + worstCaseUnits(model, tokens, requested.maxTokens), 0);
        throw budgetRefusal(error.refusal, needed);
      }
      this.settings.onLedgerError(error);
      throw ledgerUnavailable('the ledger database did not accept the generation; nothing was sent to the provider');
    }
  }

  /** Finishes the row, then tells the recorder's listeners; a row that cannot be committed is never answered as a success. */
  private async finishRow(
    start: GenerationStart,
    outcome: GenerationOutcome,
    call: CallContext,
    costUsd: CostBreakdown,
  ): Promise<ApiError | undefined> {
    try {
      await this.settings.ledger.finish(start.id, outcome);
    } catch (error) {
      this.settings.onLedgerError(error);
      return ledgerUnavailable('the generation ran but its ledger row could not be committed');
    }
    this.settings.recorder.record({
      generationId: start.id,
      requestId: call.requestId,
      caller: call.caller,
      source: start.source,
      modelId: start.modelId,
      provider: outcome.provider ?? start.provider,
      upstreamModel: outcome.upstreamModel ?? start.upstreamModel,
      status: outcome.status,
      error: outcome.error,
      finishReason: (outcome.finishReason as FinishReason | null) ?? null,
      inputTokens: outcome.inputTokens,
      outputTokens: outcome.outputTokens,
      costUsd,
      latencyMs: outcome.latencyMs,
      attempts: outcome.attempts.length,
      createdAt: start.createdAt,
    });
    return undefined;
  }

  private attempts({ model }: ResolvedModel, failures: readonly FailedAttempt[], deadline: Deadline): GenerationAttempt[] {
    return failures.map(({ error, latencyMs }) => ({
      provider: model.provider,
      upstreamModel: model.upstreamModel,
      error: toApiError(error, model, deadline).extensions.code,
      latencyMs,
    }));
  }
}

/** What a request's ledger rows record about where they come from. */
interface RowOrigin {
  readonly source: LedgerSource;
  readonly promptRef: PromptRef | null;
  readonly evaluationId: string | null;
}

const batchOrigin: RowOrigin = { source: 'batch', promptRef: null, evaluationId: null };

/**
 * Single interactive generations run with a lowered max_tokens rather than being refused; a batch is
 * all or nothing, and an evaluation's cells all run with the parameters the run was given.
 */
const mayLowerMaxTokens: ReadonlySet<LedgerSource> = new Set(['generate', 'prompt', 'compare', 'stream', 'openai']);

/** How a row that was started for a refused request is closed. */
const notStarted = (start: GenerationStart): GenerationOutcome => ({
  status: 'failed',
  error: 'ledger_unavailable',
  finishReason: null,
  text: null,
  inputTokens: 0,
  outputTokens: 0,
  costUsd: 0,
  latencyMs: 0,
  attempts: [],
  upstreamModel: start.upstreamModel,
});
