import {
  ApiError,
  conflict,
  datasetNotFound,
  evaluationNotFound,
  ledgerUnavailable,
  promptNotFound,
  validationError,
} from '../errors/api-error';
import type { EvaluationRunner } from '../jobs/evaluation-runner';
import { bestVariant, rankVariants } from '../jobs/variant-ranking';
import type { Caller } from '../pipeline/caller';
import { sleep } from '../pipeline/abortable-sleep';
import type { Router } from '../pipeline/routing/router';
import type { DatasetRepository } from '../storage/dataset-repository';
import type { EvaluationRepository } from '../storage/evaluation-repository';
import { type Evaluation, type EvaluationResult, UNFINISHED_STATUSES, type VariantSummary } from '../storage/evaluation-types';
import type { PromptRef } from '../storage/ledger-types';
import type { PromptRepository } from '../storage/prompt-repository';
import { resolveParameters } from './generation-parameters';
import { callLedger } from './ledger-call';
import { invalidCursor, pageLimit } from './paging';
import { normalizeScorers, type ScorerInput } from './scorers';

/** The contract's bounds on a run. */
export const EVALUATION_LIMITS = {
  maxPrompts: 10,
  maxModels: 10,
  nameMaxLength: 200,
  maxCells: 10 * 10 * 10_000,
  /** `evaluation_progress` subscriptions open at once per caller (each reads the database on an interval). */
  maxWatchersPerCaller: 10,
} as const;

export interface StartEvaluationInput {
  readonly name?: string | null;
  readonly datasetId: string;
  readonly prompts: ReadonlyArray<{ readonly name: string; readonly version?: number | null }>;
  readonly modelIds: readonly string[];
  readonly scorers: readonly ScorerInput[];
  readonly maxTokens?: number | null;
  readonly temperature?: number | null;
  readonly topP?: number | null;
}

/** A run as the API answers it: its variants ranked best first, and the winner. */
export interface EvaluationView extends Evaluation {
  readonly variants: readonly VariantSummary[];
  readonly best: { readonly prompt: PromptRef; readonly modelId: string } | null;
}

export interface EvaluationStores {
  readonly evaluations: EvaluationRepository;
  readonly prompts: PromptRepository;
  readonly datasets: DatasetRepository;
}

/**
 * Evaluation runs: checked and resolved (prompt versions to numbers, models and judges known,
 * scorers valid) before anything runs, then handed to the runner, answered at once. A member sees
 * and cancels only the runs they started; another caller's run is not found, exactly like a
 * missing one. Prompts and datasets are shared by every caller.
 */
export class EvaluationService {
  /** Open `evaluation_progress` subscriptions in this process, by caller name. */
  private readonly watchers = new Map<string, number>();

  constructor(
    private readonly stores: EvaluationStores | undefined,
    private readonly runner: EvaluationRunner | undefined,
    private readonly router: Router,
    private readonly onLedgerError: (error: unknown) => void,
    /** How often a progress subscription reads the run (it may be advanced by another replica). */
    private readonly progressIntervalMs = 1000,
  ) {}

  async start(input: StartEvaluationInput, caller: Caller): Promise<EvaluationView> {
    const { stores, runner } = this.available();
    const name = input.name ?? null;
    if (name !== null && [...name].length > EVALUATION_LIMITS.nameMaxLength) {
      throw validationError('Invalid name', `name is at most ${EVALUATION_LIMITS.nameMaxLength} characters`);
    }
    countBetween('prompts', input.prompts.length, 1, EVALUATION_LIMITS.maxPrompts);
    countBetween('model_ids', input.modelIds.length, 1, EVALUATION_LIMITS.maxModels);
    const duplicate = input.modelIds.find((id, index) => input.modelIds.indexOf(id) !== index);
    if (duplicate !== undefined) throw validationError('Invalid model_ids', `model_ids lists "${duplicate}" twice`);
    const scorers = normalizeScorers(input.scorers);
    // Bounds only: a cell's parameters are the run's, over its prompt version's, over the defaults.
    resolveParameters(input);
    for (const [index, prompt] of input.prompts.entries()) {
      if (prompt.version !== undefined && prompt.version !== null && (!Number.isInteger(prompt.version) || prompt.version < 1)) {
        throw validationError('Invalid prompts', `prompts[${index}].version must be an integer of at least 1`);
      }
    }
    // Unknown models (candidates and judges) are 404 before anything runs.
    for (const modelId of [...input.modelIds, ...scorers.flatMap((scorer) => (scorer.judgeModelId ? [scorer.judgeModelId] : []))]) {
      await this.router.resolve(modelId);
    }
    return this.call(async () => {
      const dataset = await stores.datasets.get(input.datasetId);
      if (!dataset) throw datasetNotFound(input.datasetId);
      const prompts: PromptRef[] = [];
      for (const ref of input.prompts) {
        const version = await stores.prompts.find(ref.name, ref.version ?? undefined);
        if (!version) throw promptNotFound(ref.name, ref.version ?? undefined);
        prompts.push({ name: version.name, version: version.version });
      }
      const cells = dataset.itemCount * prompts.length * input.modelIds.length;
      if (cells > EVALUATION_LIMITS.maxCells) {
        throw validationError('Evaluation too large', `${cells} cells; a run has at most ${EVALUATION_LIMITS.maxCells}`);
      }
      const run = await stores.evaluations.create({
        name,
        datasetId: dataset.id,
        prompts,
        modelIds: [...input.modelIds],
        scorers,
        parameters: {
          ...(input.maxTokens == null ? {} : { maxTokens: input.maxTokens }),
          ...(input.temperature == null ? {} : { temperature: input.temperature }),
          ...(input.topP == null ? {} : { topP: input.topP }),
        },
        owner: { name: caller.name, team: caller.team ?? null, role: caller.role },
        caseCount: dataset.itemCount,
        lease: runner.leaseForNewRun(),
      });
      // The answer is the run as accepted: read before its first cell can be recorded.
      const accepted = await this.view(run);
      await runner.enqueue(run);
      return accepted;
    });
  }

  async list(
    query: { readonly limit?: number | null; readonly cursor?: string | null },
    caller: Caller,
  ): Promise<{ readonly evaluations: EvaluationView[]; readonly nextCursor: string | null }> {
    const { stores } = this.available();
    const limit = pageLimit(query.limit);
    return this.call(async () => {
      const page = await stores.evaluations.list(ownerFilter(caller), { limit, cursor: query.cursor });
      const evaluations: EvaluationView[] = [];
      for (const run of page.evaluations) evaluations.push(await this.view(run));
      return { evaluations, nextCursor: page.nextCursor };
    });
  }

  async get(evaluationId: string, caller: Caller): Promise<EvaluationView> {
    return this.call(async () => this.view(await this.visible(evaluationId, caller)));
  }

  async results(
    evaluationId: string,
    query: { readonly modelId?: string | null; readonly limit?: number | null; readonly cursor?: string | null },
    caller: Caller,
  ): Promise<{ readonly run: Evaluation; readonly results: EvaluationResult[]; readonly nextCursor: string | null }> {
    const { stores } = this.available();
    const limit = pageLimit(query.limit);
    return this.call(async () => {
      const run = await this.visible(evaluationId, caller);
      let modelIndex: number | undefined;
      if (query.modelId != null) {
        modelIndex = run.modelIds.indexOf(query.modelId);
        // A model the run did not use has no cells.
        if (modelIndex < 0) return { run, results: [], nextCursor: null };
      }
      const page = await stores.evaluations.results(run, { modelIndex }, { limit, cursor: query.cursor });
      return { run, ...page };
    });
  }

  /** Cancels a queued or running run (409 once it has ended); cells in flight are aborted, finished ones kept. */
  async cancel(evaluationId: string, caller: Caller): Promise<EvaluationView> {
    const { runner } = this.available();
    return this.call(async () => {
      const run = await this.visible(evaluationId, caller);
      const cancelled = await runner.endRun(run.id, 'cancelled', null);
      if (!cancelled) {
        const now = await this.visible(evaluationId, caller);
        throw conflict('The evaluation has already ended', `evaluation ${evaluationId} is ${now.status}`);
      }
      return this.view(await this.visible(evaluationId, caller));
    });
  }

  /**
   * The run now, then again whenever its status or counts change, until it ends (the last view is its
   * final one). Read from the database on an interval rather than from this process's runner: cells
   * may be recorded by any replica. A run the caller may not see is 404 before anything is yielded.
   */
  async watch(evaluationId: string, caller: Caller, signal?: AbortSignal): Promise<AsyncIterable<EvaluationView>> {
    const { maxWatchersPerCaller } = EVALUATION_LIMITS;
    if ((this.watchers.get(caller.name) ?? 0) >= maxWatchersPerCaller) {
      throw new ApiError(
        'rate_limit_exceeded',
        429,
        'Too many evaluation_progress subscriptions',
        `at most ${maxWatchersPerCaller} at once per caller; close one first`,
      );
    }
    const first = await this.get(evaluationId, caller);
    return this.changes(first, caller, signal);
  }

  private async *changes(first: EvaluationView, caller: Caller, signal: AbortSignal | undefined): AsyncGenerator<EvaluationView> {
    // Counted once it runs: a generator that never starts never runs its `finally` either.
    this.watchers.set(caller.name, (this.watchers.get(caller.name) ?? 0) + 1);
    try {
      let last = first;
      yield last;
      while (!isFinished(last) && !signal?.aborted) {
        await sleep(this.progressIntervalMs, signal);
        if (signal?.aborted) return;
        const now = await this.get(last.id, caller);
        if (now.status === last.status && now.completed === last.completed && now.failed === last.failed) continue;
        last = now;
        yield last;
      }
    } finally {
      const left = (this.watchers.get(caller.name) ?? 1) - 1;
      if (left > 0) this.watchers.set(caller.name, left);
      else this.watchers.delete(caller.name);
    }
  }

  private async visible(evaluationId: string, caller: Caller): Promise<Evaluation> {
    const run = await this.available().stores.evaluations.get(evaluationId);
    if (!run || (caller.role !== 'admin' && run.owner.name !== caller.name)) throw evaluationNotFound(evaluationId);
    return run;
  }

  private async view(run: Evaluation): Promise<EvaluationView> {
    const variants = run.frozenVariants ?? rankVariants(await this.available().stores.evaluations.variants(run));
    const best = bestVariant(variants);
    return { ...run, variants, best: best ? { prompt: best.prompt, modelId: best.modelId } : null };
  }

  private available(): { readonly stores: EvaluationStores; readonly runner: EvaluationRunner } {
    if (!this.stores || !this.runner) throw ledgerUnavailable('the ledger is off (LEDGER=off): evaluations need its database');
    return { stores: this.stores, runner: this.runner };
  }

  private call<T>(query: () => Promise<T>): Promise<T> {
    return callLedger(query, this.onLedgerError, invalidCursor);
  }
}

const isFinished = (run: Evaluation): boolean => !UNFINISHED_STATUSES.includes(run.status);

const ownerFilter = (caller: Caller): { readonly owner?: string } => (caller.role === 'admin' ? {} : { owner: caller.name });

function countBetween(field: string, count: number, min: number, max: number): void {
  if (count < min || count > max) throw validationError(`Invalid ${field}`, `${field} holds ${min} to ${max} entries, got ${count}`);
}
