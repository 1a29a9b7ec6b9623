import { type ApiError, ledgerUnavailable, shuttingDown } from '../errors/api-error';
import type {
  ChatMessage,
  FinishReason,
  GenerationRequest,
  GenerationResult,
  ModelDescriptor,
  ModelStream,
  StreamPart,
} from '../providers/provider';
import {
  checkMessages,
  checkPrompt,
  checkPrompts,
  checkStop,
  resolveParameters,
  transcriptOf,
  type GenerationParameters,
  type RequestedParameters,
} from '../services/generation-parameters';
import { affordableMaxTokens, type BudgetLookup, budgetRefusal, worstCaseUnits } from './admission/budget-hold';
import { admitPrompt, type AdmittedPrompt, familyTokenizer, inputTokensOf } from './admission/context-window';
import { type CallContext, clientGone } from './call-context';
import { computeCost, sumCosts, type CostBreakdown } from './cost';
import { Deadline } from './deadline';
import { BudgetRefusedError } from '../storage/budget-errors';
import { newGenerationId } from '../storage/generation-id';
import type { GenerationAttempt, GenerationOutcome, GenerationStart, LedgerSource, PromptRef } from '../storage/ledger-types';
import type { GenerationLedger } from './generation-ledger';
import type { GenerationRecord, GenerationRecorder } from './generation-record';
import { meter, type TokenCounts } from './meter';
import { type CallEnd, callThroughPolicies, type FailedAttempt, type RetryPolicy, RoutingFailed, type Served } from './routing/policies';
import { type Candidate, candidatesOf, type RoutePlan, type Router } from './routing/router';
import { isMisconfiguration, routingFailureToApiError, toApiError } from './routing/upstream-errors';
import { countTextTokens } from './token-counter';

/*
 * The one path every generation takes, whichever surface asked for it:
 *
 *   1. validate   the request's own parameters (one rule set for every surface)
 *   2. route      the model id to its candidate endpoints: its replicas (least busy first), then
 *                 its fallbacks' (routing/router.ts)
 *   3. admit      the prompt against the model's context (budget reservations join here), then
 *                 start its row in the ledger: a ledger that cannot write refuses (503) before
 *                 anything is spent upstream
 *   4. call       each candidate in turn under the routing policies (routing/policies.ts: circuit
 *                 breakers, retries with backoff and Retry-After, fallbacks), all under one deadline
 *                 counted from admission; a call goes through the request's DataLoader (prompts of
 *                 one tick go upstream together), or, for `stream`, opens the provider's stream,
 *                 retried only until it has started
 *   5. record     finish the ledger row (the answer waits for its commit), then hand one
 *                 GenerationRecord per prompt, succeeded, failed or cancelled, to the recorder's
 *                 listeners
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
  /** Ignored when `messages` is given: the conversation's transcript is the prompt then. */
  readonly prompt: string;
  readonly modelId: string;
  readonly seed?: number | null;
  readonly origin?: GenerationOrigin;
  /** A conversation (the OpenAI-compatible API): chat models get it as messages. */
  readonly messages?: readonly ChatMessage[];
  readonly stop?: readonly string[];
}

/** What a stream yields: the text as it comes, then the whole answer as `generate` would have returned it. */
export type StreamEvent = { readonly type: 'delta'; readonly text: string } | { readonly type: 'done'; readonly outcome: GenerateOutcome };

/**
 * A started stream. Iterate it once: a failure after the start is thrown by the iteration as an
 * ApiError (its row recorded); leaving the loop early cancels the upstream call and records what
 * was generated until then.
 */
export interface GenerationStream extends AsyncIterable<StreamEvent> {
  readonly generationId: string;
  readonly modelId: string;
  /** The parameters it runs with (max_tokens may have been lowered to what a budget's money left buys). */
  readonly parameters: GenerationParameters;
}

export interface GenerateBatchInput extends RequestedParameters {
  readonly prompts: readonly string[];
  readonly modelId: string;
  readonly seed?: number | null;
}

/** One upstream call of a generation, as the answer reports it. */
export interface AttemptSummary {
  readonly modelId: string;
  readonly provider: string;
  /** The error code of a failed attempt; null for the one that served. */
  readonly error: string | null;
  readonly latencyMs: number | null;
}

export interface GenerationMetadata {
  /** The ledger row's id. */
  readonly generationId: string;
  readonly finishReason: FinishReason;
  /** The endpoint that served it (a replica, or a fallback's). */
  readonly provider: string;
  readonly upstreamModel: string;
  readonly requestId: string;
  readonly upstreamRequestId?: string;
  readonly tokenSource: 'upstream' | 'tokenizer';
  readonly costUsd: CostBreakdown;
  /** The prompt version the prompt was filled from, when one was. */
  readonly promptRef?: PromptRef;
  /** Every upstream call it took, the one that served last. */
  readonly attempts: readonly AttemptSummary[];
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
  readonly router: Router;
  readonly ledger: GenerationLedger;
  /** Undefined when the ledger is off: no budget applies. */
  readonly budgets?: BudgetLookup;
  readonly recorder: GenerationRecorder;
  /** Told about ledger writes that failed; the caller sees only ledger_unavailable. */
  readonly onLedgerError: (error: unknown) => void;
  /** UPSTREAM_TIMEOUT_MS: from admission to the answer, queueing and retries included. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  /** Told when an upstream refuses the gateway's own credentials (401, 403): an operator must fix it. */
  readonly onMisconfiguredEndpoint: (message: string) => void;
  /** Told about every request a budget refused (the refusals metric). */
  readonly onBudgetRefused?: () => void;
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

/** Why a stream's own controller aborted it: the consumer left, or the server is shutting down. */
type StreamStop = 'consumer_left' | 'shutdown';

/** The ledger row of a generation that `generate` threw for, when one was started (null when it was refused before). */
export function failedGenerationId(error: unknown): string | null {
  return (typeof error === 'object' && error !== null && failedGenerationIds.get(error)) || null;
}

export class GenerationPipeline {
  /** The stop switch of every open stream, for shutdown. */
  private readonly openStreams = new Set<AbortController>();
  /** Told when the last open stream has been recorded. */
  private readonly settleWaiters = new Set<() => void>();
  /** Set by `interruptStreams`: a stream whose upstream answers later is interrupted as it opens. */
  private interrupted = false;

  constructor(private readonly settings: PipelineSettings) {}

  get recorder(): GenerationRecorder {
    return this.settings.recorder;
  }

  async generate(input: GenerateInput, call: CallContext): Promise<GenerateOutcome> {
    const { parameters, prompt, plan, admitted, origin } = await this.prepare(input, 'generate');
    const {
      settled: [settled],
      parameters: applied,
    } = await this.run(plan, [admitted], parameters, input, call, origin);
    if (!settled!.ok) {
      failedGenerationIds.set(settled!.error, settled!.generationId);
      throw settled!.error;
    }
    const { text, counts, latencyMs, metadata } = settled!;
    // `applied`: max_tokens may have been lowered to what a budget's money left buys.
    return outcomeOf({ text, prompt, modelId: plan.requested.model.id, parameters: applied, counts, latencyMs, metadata, origin });
  }

  /**
   * One generation as a stream (REST's SSE route, GraphQL subscriptions, /v1 with `stream: true`).
   * Steps 1 to 3 as for `generate`; step 4 opens the provider's stream under the retry policy, which
   * may retry only until the stream has started. Resolves once the upstream has answered, so whatever
   * is refused until then is an ordinary error. Step 5 runs when the stream ends, however it ends:
   * finished, failed, cancelled by the client (with what was generated until then, charged), or cut
   * by shutdown.
   */
  async stream(input: GenerateInput, call: CallContext): Promise<GenerationStream> {
    const calledAt = performance.now();
    const { parameters, prompt, plan, admitted, origin } = await this.prepare(input, 'stream');
    const {
      starts: [start],
      parameters: applied,
    } = await this.startRows(plan, [admitted], parameters, input.seed, call, origin);
    call.requestLog?.generationsStarted(1);
    const stop = new AbortController();
    const deadline = new Deadline(this.settings.timeoutMs, [clientGone(call), stop.signal]);
    const startedAt = performance.now();
    let opened: Served<ModelStream>;
    try {
      opened = await callThroughPolicies(plan, this.settings.router.endpoints, this.settings.retry, deadline, (candidate, signal) =>
        candidate.provider.stream(this.requestOf(candidate.model, admitted, applied, input, signal)),
      );
    } catch (failure) {
      const error = await this.recordFailure(plan, admitted, start!, failure, call, deadline, startedAt);
      deadline.dispose();
      failedGenerationIds.set(error, start!.id);
      throw error;
    }
    this.openStreams.add(stop);
    // Its upstream answered after shutdown began: it would otherwise run on through the drain.
    if (this.interrupted) stop.abort('shutdown' satisfies StreamStop);
    const open: OpenStream = {
      plan,
      admitted,
      start: start!,
      prompt,
      parameters: applied,
      origin,
      call,
      deadline,
      stop,
      opened,
      calledAt,
      ending: { how: 'abandoned' },
    };
    this.reportMisconfigured(opened.failures);
    const relay = this.relay(open);
    let started = false;
    const events: AsyncIterator<StreamEvent> = {
      next: () => {
        started = true;
        return relay.next();
      },
      // A generator that never started ends at `return()` without running its `finally`: a consumer that
      // leaves before the first event (an unsubscribe while the first token is awaited) is closed here.
      return: async () => {
        if (!started) {
          started = true;
          await this.abandon(open);
        }
        return relay.return(undefined);
      },
    };
    return { generationId: start!.id, modelId: plan.requested.model.id, parameters: applied, [Symbol.asyncIterator]: () => events };
  }

  /** The server is shutting down: every open stream, and each that opens from now on, sends its client an error and is recorded. */
  interruptStreams(): void {
    this.interrupted = true;
    for (const stop of this.openStreams) stop.abort('shutdown' satisfies StreamStop);
  }

  /**
   * Resolves true once every open stream has been recorded (an interrupted one is recorded when its
   * consumer next pulls), false after `timeoutMs`: shutdown waits for it before closing the ledger.
   */
  streamsSettled(timeoutMs: number): Promise<boolean> {
    if (this.openStreams.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settleWaiters.delete(settled);
        resolve(false);
      }, timeoutMs);
      const settled = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.settleWaiters.add(settled);
    });
  }

  /** Step 1 and 2 and the context check of step 3, shared by `generate` and `stream`. */
  private async prepare(input: GenerateInput, defaultSource: SingleSource) {
    const parameters = resolveParameters(input);
    checkStop(input.stop);
    const prompt = input.messages ? transcriptOf(checkMessages(input.messages)) : checkPrompt(input.prompt);
    const plan = await this.settings.router.plan(input.modelId);
    const admitted = await admitPrompt(plan.requested, prompt, input.messages ? 'messages' : 'prompt', parameters, input.messages);
    const origin: RowOrigin = {
      source: input.origin?.source ?? defaultSource,
      promptRef: input.origin?.promptRef ?? null,
      evaluationId: input.origin?.evaluationId ?? null,
    };
    return { parameters, prompt, plan, admitted, origin };
  }

  private requestOf(
    model: ModelDescriptor,
    admitted: AdmittedPrompt,
    parameters: GenerationParameters,
    input: Pick<GenerateInput, 'seed' | 'messages' | 'stop'>,
    signal: AbortSignal,
  ): GenerationRequest {
    // Field by field: a spread with keys after it would be a new hidden class for every request.
    return {
      model,
      prompt: admitted.prompt,
      messages: input.messages,
      stop: input.stop,
      maxTokens: parameters.maxTokens,
      temperature: parameters.temperature,
      topP: parameters.topP,
      seed: input.seed ?? undefined,
      signal,
    };
  }

  /**
   * Relays a started stream's text and runs step 5 when it ends. Leaving the loop early (the consumer
   * returns) runs the `finally`: the upstream call stops and the row is recorded as cancelled.
   */
  private async *relay(stream: OpenStream): AsyncGenerator<StreamEvent> {
    const { plan, start, call, opened } = stream;
    const served = opened.candidate.model;
    const progress: StreamProgress = { text: '', outputTokens: undefined, firstTextAt: undefined };
    let ended = false;
    try {
      let finish: Extract<StreamPart, { type: 'finish' }> | undefined;
      try {
        for await (const part of opened.value) {
          if (part.type === 'finish') {
            finish = part;
            continue;
          }
          progress.firstTextAt ??= performance.now();
          progress.text += part.text;
          progress.outputTokens = part.outputTokens ?? progress.outputTokens;
          yield { type: 'delta', text: part.text };
        }
      } catch (failure) {
        ended = true;
        throw await this.recordInterrupted(stream, progress, failure);
      }
      ended = true;
      stream.ending.how = 'succeeded';
      const result: GenerationResult = {
        text: progress.text,
        finishReason: finish?.finishReason ?? 'other',
        upstreamModel: finish?.upstreamModel ?? served.upstreamModel,
        usage: finish?.usage,
        upstreamRequestId: opened.value.upstreamRequestId,
        // The serving attempt's time, as a whole answer's is: earlier attempts are the attempts' own.
        latencyMs: Math.round(performance.now() - opened.startedAt),
      };
      const { counts, metered } = meter(served, stream.admitted, result, call.requestId, start.id);
      const outcome = this.succeededOutcome(opened, result, counts, metered.costUsd);
      const unrecorded = await this.finishRow(start, outcome, call, metered.costUsd, firstTokenMs(stream, progress));
      if (unrecorded) throw unrecorded;
      const { prompt, parameters, origin } = stream;
      yield {
        type: 'done',
        outcome: outcomeOf({
          text: result.text,
          prompt,
          modelId: plan.requested.model.id,
          parameters,
          counts,
          latencyMs: result.latencyMs,
          metadata: metadataOf(metered, summariesOf(outcome.attempts)),
          origin,
        }),
      };
    } finally {
      if (!ended) {
        stream.stop.abort('consumer_left' satisfies StreamStop);
        await this.recordInterrupted(stream, progress, undefined);
      }
      this.closed(stream);
    }
  }

  /** A stream whose consumer left before its first event: the upstream call stops, what it holds is released, the row is recorded. */
  private async abandon(stream: OpenStream): Promise<void> {
    stream.stop.abort('consumer_left' satisfies StreamStop);
    try {
      await stream.opened.value[Symbol.asyncIterator]().return?.();
    } finally {
      await this.recordInterrupted(stream, { text: '', outputTokens: undefined, firstTextAt: undefined }, undefined);
      this.closed(stream);
    }
  }

  private closed({ stop, deadline, opened, ending }: OpenStream): void {
    this.openStreams.delete(stop);
    deadline.dispose();
    opened.end(ending.how);
    if (this.openStreams.size > 0) return;
    for (const settled of this.settleWaiters) settled();
    this.settleWaiters.clear();
  }

  /**
   * Step 5 for a stream that did not finish: cancelled when its client went away (or the server shut
   * down), failed otherwise. Either way the row keeps the text generated so far and its tokens, and
   * is charged for them: the upstream billed them.
   */
  private async recordInterrupted(stream: OpenStream, progress: StreamProgress, failure: unknown): Promise<ApiError> {
    const { start, call, deadline, stop, admitted, opened } = stream;
    const { model } = opened.candidate;
    const shutdown = stop.signal.reason === ('shutdown' satisfies StreamStop);
    const cancelled = shutdown || stop.signal.aborted || (clientGone(call)?.aborted ?? false);
    if (!cancelled) stream.ending.how = 'failed';
    const error = shutdown ? shuttingDown() : toApiError(failure, model, deadline);
    const code = shutdown ? 'interrupted' : cancelled ? 'cancelled' : error.extensions.code;
    // Counting may load the tokenizer, which blocks for a while the first time: let the aborted upstream
    // connection close first, so the upstream stops generating (and billing) at once.
    if (progress.outputTokens === undefined && progress.text) await new Promise((resolve) => setImmediate(resolve));
    const inputTokens = inputTokensOf(model, admitted);
    const outputTokens = progress.outputTokens ?? (progress.text ? countTextTokens(progress.text, familyTokenizer(model)) : 0);
    const costUsd = computeCost(model.pricing, inputTokens, outputTokens);
    // The serving attempt's time, as a finished stream's: the attempts before it keep their own.
    const latencyMs = Math.round(performance.now() - opened.startedAt);
    const outcome: GenerationOutcome = {
      status: cancelled ? 'cancelled' : 'failed',
      error: code,
      finishReason: null,
      text: progress.text || null,
      inputTokens,
      outputTokens,
      costUsd: costUsd.total,
      latencyMs,
      provider: model.provider,
      upstreamModel: model.upstreamModel,
      // The attempts before this one failed before the deadline could matter to them.
      attempts: [
        ...this.attempts(opened.failures),
        { modelId: model.id, provider: model.provider, upstreamModel: model.upstreamModel, error: code, latencyMs },
      ],
    };
    return (await this.finishRow(start, outcome, call, costUsd, firstTokenMs(stream, progress))) ?? error;
  }

  async generateBatch(input: GenerateBatchInput, call: CallContext): Promise<BatchOutcome> {
    const parameters = resolveParameters(input);
    const prompts = checkPrompts(input.prompts);
    const plan = await this.settings.router.plan(input.modelId);
    const admitted: AdmittedPrompt[] = [];
    for (const [index, prompt] of prompts.entries())
      admitted.push(await admitPrompt(plan.requested, prompt, `prompts[${index}]`, parameters));
    const startedAt = performance.now();
    const { settled } = await this.run(plan, admitted, parameters, input, call, batchOrigin);
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
      const { inputTokens, outputTokens, totalTokens } = answer.counts;
      // The new keys first: after a spread they would make a new hidden class for every item.
      const metadata = { inputTokens, outputTokens, totalTokens, latencyMs: answer.latencyMs, ...answer.metadata };
      succeeded.push(metadata);
      return { index, prompt, text: answer.text, success: true, error: null, metadata };
    });
    const sum = (pick: (item: (typeof succeeded)[number]) => number): number => succeeded.reduce((total, item) => total + pick(item), 0);
    return {
      results,
      modelId: plan.requested.model.id,
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
    plan: RoutePlan,
    admitted: readonly AdmittedPrompt[],
    parameters: GenerationParameters,
    input: Pick<GenerateInput, 'seed' | 'messages' | 'stop'>,
    call: CallContext,
    origin: RowOrigin,
  ): Promise<{ readonly settled: Settled[]; readonly parameters: GenerationParameters }> {
    const { starts, parameters: applied } = await this.startRows(plan, admitted, parameters, input.seed, call, origin);
    call.requestLog?.generationsStarted(starts.length);
    const deadline = new Deadline(this.settings.timeoutMs, [clientGone(call)]);
    try {
      const settled = await Promise.all(
        admitted.map((prompt, index) => this.generateOne(plan, prompt, starts[index]!, applied, input, call, deadline)),
      );
      return { settled, parameters: applied };
    } finally {
      deadline.dispose();
    }
  }

  /** Steps 4 and 5 for one started prompt: the candidates under the routing policies, then its ledger row finished. */
  private async generateOne(
    plan: RoutePlan,
    prompt: AdmittedPrompt,
    start: GenerationStart,
    parameters: GenerationParameters,
    input: Pick<GenerateInput, 'seed' | 'messages' | 'stop'>,
    call: CallContext,
    deadline: Deadline,
  ): Promise<Settled> {
    const startedAt = performance.now();
    let served: Served<GenerationResult>;
    try {
      served = await callThroughPolicies(
        plan,
        this.settings.router.endpoints,
        this.settings.retry,
        deadline,
        ({ provider, model }, signal) =>
          call.generationLoader.load({ provider, request: this.requestOf(model, prompt, parameters, input, signal) }),
      );
    } catch (failure) {
      return {
        ok: false,
        generationId: start.id,
        error: await this.recordFailure(plan, prompt, start, failure, call, deadline, startedAt),
      };
    }
    served.end('succeeded');
    this.reportMisconfigured(served.failures);
    const result = served.value;
    const { counts, metered } = meter(served.candidate.model, prompt, result, call.requestId, start.id);
    const outcome = this.succeededOutcome(served, result, counts, metered.costUsd);
    const unrecorded = await this.finishRow(start, outcome, call, metered.costUsd);
    if (unrecorded) return { ok: false, generationId: start.id, error: unrecorded };
    const metadata = metadataOf(metered, summariesOf(outcome.attempts));
    return { ok: true, generationId: start.id, text: result.text, counts, metadata, latencyMs: result.latencyMs };
  }

  /** Step 5 for a call that never answered (every attempt failed): the row keeps the prompt's tokens and costs nothing. */
  private async recordFailure(
    plan: RoutePlan,
    prompt: AdmittedPrompt,
    start: GenerationStart,
    failure: unknown,
    call: CallContext,
    deadline: Deadline,
    startedAt: number,
  ): Promise<ApiError> {
    const { model } = plan.requested;
    const failures = failure instanceof RoutingFailed ? failure.failures : [];
    this.reportMisconfigured(failures);
    const error = routingFailureToApiError(failure, model, deadline);
    const cancelled = (clientGone(call)?.aborted ?? false) && !deadline.expired;
    // The row names the endpoint tried last (the one asked for may have been skipped or never reached).
    const last = failures.at(-1)?.candidate.model;
    const outcome: GenerationOutcome = {
      status: cancelled ? 'cancelled' : 'failed',
      error: cancelled ? 'cancelled' : error.extensions.code,
      finishReason: null,
      text: null,
      // A failed row keeps the prompt's tokens: counted now if admission did not need to.
      inputTokens: inputTokensOf(model, prompt),
      outputTokens: 0,
      costUsd: 0,
      latencyMs: Math.round(performance.now() - startedAt),
      ...(last ? { provider: last.provider, upstreamModel: last.upstreamModel } : {}),
      attempts: this.attempts(failures, deadline),
    };
    return (await this.finishRow(start, outcome, call, { input: 0, output: 0, total: 0 })) ?? error;
  }

  /** Upstreams that refused the gateway's own credentials: an operator must fix the key, whoever served. */
  private reportMisconfigured(failures: readonly FailedAttempt[]): void {
    for (const { error } of failures) if (isMisconfiguration(error)) this.settings.onMisconfiguredEndpoint(error.message);
  }

  private succeededOutcome(
    served: Served<unknown>,
    result: GenerationResult,
    counts: TokenCounts,
    costUsd: CostBreakdown,
  ): GenerationOutcome {
    const { model } = served.candidate;
    return {
      status: 'succeeded',
      error: null,
      finishReason: result.finishReason,
      provider: model.provider,
      upstreamModel: result.upstreamModel,
      text: result.text,
      inputTokens: counts.inputTokens,
      outputTokens: counts.outputTokens,
      costUsd: costUsd.total,
      latencyMs: result.latencyMs,
      attempts: [
        ...this.attempts(served.failures),
        { modelId: model.id, provider: model.provider, upstreamModel: result.upstreamModel, error: null, latencyMs: result.latencyMs },
      ],
    };
  }

  /**
   * Starts one ledger row per prompt, all committed before any upstream call. When budgets apply,
   * each prompt's worst case is held on all of them in the same transaction, all or nothing: a
   * budget without room refuses (402), except that a single `generate` whose prompt and at least one
   * output token still fit runs with the max_tokens the money left buys. A ledger that cannot write
   * refuses the request (503).
   */
  private async startRows(
    plan: RoutePlan,
    admitted: readonly AdmittedPrompt[],
    requested: GenerationParameters,
    seed: number | null | undefined,
    call: CallContext,
    origin: RowOrigin,
  ): Promise<{ readonly starts: GenerationStart[]; readonly parameters: GenerationParameters }> {
    const { model } = plan.requested;
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
          parameters: {
            maxTokens: parameters.maxTokens,
            temperature: parameters.temperature,
            topP: parameters.topP,
            // Always the key (undefined when absent): a conditional spread here runs through V8's runtime each time.
            seed: seed ?? undefined,
          },
          createdAt,
        }),
      );
    // A fallback may cost more than the model asked for: the hold covers the dearest that may serve.
    const servingModels = uniqueModels(candidatesOf(plan));
    const budgetIds = await this.applyingBudgets(model, servingModels, call);
    if (budgetIds.length > 0) return this.startHeld(servingModels, admitted, requested, budgetIds, createdAt, startsWith, origin.source);

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
  private async applyingBudgets(model: ModelDescriptor, servingModels: readonly ModelDescriptor[], call: CallContext): Promise<string[]> {
    const { budgets } = this.settings;
    if (!budgets || !servingModels.some((serving) => serving.pricing)) return [];
    try {
      const applying = await budgets.applying({ caller: call.caller.name, team: call.caller.team ?? null, modelId: model.id });
      return applying.map((budget) => budget.id);
    } catch (error) {
      this.settings.onLedgerError(error);
      throw ledgerUnavailable('the budgets could not be read; nothing was sent to the provider');
    }
  }

  private async startHeld(
    models: readonly ModelDescriptor[],
    admitted: readonly AdmittedPrompt[],
    requested: GenerationParameters,
    budgetIds: readonly string[],
    createdAt: Date,
    startsWith: (parameters: GenerationParameters) => GenerationStart[],
    source: LedgerSource,
  ): Promise<{ readonly starts: GenerationStart[]; readonly parameters: GenerationParameters }> {
    const inputTokens = admitted.map((prompt) => inputTokensOf(models[0]!, prompt));
    const hold = async (parameters: GenerationParameters): Promise<GenerationStart[]> => {
      const starts = startsWith(parameters);
      const amountsUnits = inputTokens.map((tokens) => worstCaseUnits(models, tokens, parameters.maxTokens));
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
        const maxTokens = affordableMaxTokens(models, inputTokens[0]!, room, requested.maxTokens - 1);
        if (maxTokens < 1) throw error;
        const lowered = { ...requested, maxTokens };
        return { starts: await hold(lowered), parameters: lowered };
      }
    } catch (error) {
      if (error instanceof BudgetRefusedError) {
        this.settings.onBudgetRefused?.();
        const needed = inputTokens.reduce((sum, tokens) => sum + worstCaseUnits(models, tokens, requested.maxTokens), 0);
        throw budgetRefusal(error.refusal, needed);
      }
      this.settings.onLedgerError(error);
      throw ledgerUnavailable('the ledger database did not accept the generation; nothing was sent to the provider');
    }
  }

  /**
   * Finishes the row, then tells the recorder's listeners. A row that cannot be committed is never
   * answered as a success, but the generation still happened (the upstream may have billed it), so
   * metrics and traces still see it, marked as missing from the ledger.
   */
  private async finishRow(
    start: GenerationStart,
    outcome: GenerationOutcome,
    call: CallContext,
    costUsd: CostBreakdown,
    timeToFirstTokenMs?: number,
  ): Promise<ApiError | undefined> {
    let unrecorded: ApiError | undefined;
    try {
      await this.settings.ledger.finish(start.id, outcome);
    } catch (error) {
      this.settings.onLedgerError(error);
      unrecorded = ledgerUnavailable('the generation ran but its ledger row could not be committed');
    }
    const record: GenerationRecord = {
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
      parameters: start.parameters,
      createdAt: start.createdAt,
      inLedger: unrecorded === undefined,
      ...(timeToFirstTokenMs === undefined ? {} : { timeToFirstTokenMs }),
    };
    this.settings.recorder.record(record);
    // Handed to the request that made it, not looked up by request id: clients choose their X-Request-Id, and a
    // WebSocket's operations share its upgrade's.
    call.requestLog?.recorded(record);
    return unrecorded;
  }

  /** Failed attempts as the ledger keeps them; the request's deadline decides only the last one's code. */
  private attempts(failures: readonly FailedAttempt[], deadline?: Deadline): GenerationAttempt[] {
    return failures.map(({ candidate: { model }, error, latencyMs }, index) => ({
      modelId: model.id,
      provider: model.provider,
      upstreamModel: model.upstreamModel,
      error: routingFailureToApiError(error, model, index === failures.length - 1 ? deadline : undefined).extensions.code,
      latencyMs,
    }));
  }
}

/** A stream between its start and its end: what step 5 needs. */
interface OpenStream {
  readonly plan: RoutePlan;
  readonly admitted: AdmittedPrompt;
  readonly start: GenerationStart;
  readonly prompt: string;
  readonly parameters: GenerationParameters;
  readonly origin: RowOrigin;
  readonly call: CallContext;
  readonly deadline: Deadline;
  /** Aborted when the consumer leaves early or the server shuts down (the reason says which). */
  readonly stop: AbortController;
  readonly opened: Served<ModelStream>;
  /** When the pipeline took the call, before admission: what time to first token is measured from. */
  readonly calledAt: number;
  /** What the stream's end tells its endpoint's breaker: set as it ends. */
  readonly ending: { how: CallEnd };
}

/** What a stream has produced so far. */
interface StreamProgress {
  text: string;
  outputTokens: number | undefined;
  /** When the first text arrived (performance.now()). */
  firstTextAt: number | undefined;
}

/** From the stream's admission to its first text, when there was any. */
const firstTokenMs = (stream: OpenStream, progress: StreamProgress): number | undefined =>
  progress.firstTextAt === undefined ? undefined : Math.round(progress.firstTextAt - stream.calledAt);

/** The answer of one generation, as `generate` returns it and a stream's last event carries it. */
function outcomeOf(answer: {
  readonly text: string;
  readonly prompt: string;
  readonly modelId: string;
  readonly parameters: GenerationParameters;
  readonly counts: TokenCounts;
  readonly latencyMs: number;
  readonly metadata: GenerationMetadata;
  readonly origin: RowOrigin;
}): GenerateOutcome {
  const { text, prompt, modelId, parameters, counts, latencyMs, origin } = answer;
  const metadata = origin.promptRef ? metadataOf(answer.metadata, answer.metadata.attempts, origin.promptRef) : answer.metadata;
  const metrics = { inputTokens: counts.inputTokens, outputTokens: counts.outputTokens, totalTokens: counts.totalTokens, latencyMs };
  return { text, modelId, prompt, parameters, metrics, metadata, timestamp: new Date() };
}

/**
 * An answer's metadata, field by field. Node 20's V8 gives an object spread followed by a key the source
 * lacks (`{ ...metered, attempts }`) a hidden class of its own every time: ~1.5 µs more, and every later
 * read of such objects meets a new shape.
 */
function metadataOf(
  metered: Omit<GenerationMetadata, 'attempts'>,
  attempts: readonly AttemptSummary[],
  promptRef: PromptRef | undefined = metered.promptRef,
): GenerationMetadata {
  return {
    generationId: metered.generationId,
    finishReason: metered.finishReason,
    provider: metered.provider,
    upstreamModel: metered.upstreamModel,
    requestId: metered.requestId,
    upstreamRequestId: metered.upstreamRequestId,
    tokenSource: metered.tokenSource,
    costUsd: metered.costUsd,
    promptRef,
    attempts,
  };
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

/** The distinct models among the candidates (replicas share one). */
function uniqueModels(candidates: readonly Candidate[]): ModelDescriptor[] {
  const byId = new Map<string, ModelDescriptor>();
  for (const { model } of candidates) if (!byId.has(model.id)) byId.set(model.id, model);
  return [...byId.values()];
}

/** The attempts as the answer's metadata lists them. */
function summariesOf(attempts: readonly GenerationAttempt[]): AttemptSummary[] {
  return attempts.map(({ modelId, provider, error, latencyMs }) => ({ modelId: modelId ?? '', provider, error, latencyMs }));
}
