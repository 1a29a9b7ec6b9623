import { randomUUID } from 'node:crypto';
import { ApiError } from '../errors/api-error';
import type { Logger } from '../logger';
import { createGenerationLoader } from '../pipeline/generation-loader';
import { failedGenerationId, type GenerationPipeline } from '../pipeline/generation-pipeline';
import type { CallContext } from '../pipeline/call-context';
import { ConcurrencyLimit } from '../providers/concurrency-limit';
import { fillTemplate } from '../services/prompt-template';
import { JudgeFailedError, scoreCell, type ScorerSpec } from '../services/scorers';
import { usdToCostUnits } from '../storage/cost-units';
import type { DatasetRepository } from '../storage/dataset-repository';
import { cellId, type EvaluationRepository } from '../storage/evaluation-repository';
import type { CellKey, Evaluation, FinishedCell } from '../storage/evaluation-types';
import type { PromptRepository, PromptVersionRecord } from '../storage/prompt-repository';
import { CaseInterrupted, type CaseJob, type CaseQueue } from './case-queue';
import { rankVariants } from './variant-ranking';

export interface EvaluationRunnerSettings {
  readonly evaluations: EvaluationRepository;
  readonly prompts: PromptRepository;
  readonly datasets: DatasetRepository;
  readonly pipeline: GenerationPipeline;
  readonly logger: Logger;
  /** EVAL_CONCURRENCY: cells in flight in this process. */
  readonly concurrency: number;
  /** EVAL_LEASE_MS: how long a stopped process's claim on a run holds before another process takes it. */
  readonly leaseMs: number;
  /** LEDGER_CONTENT: false keeps no generated text in the cells either. */
  readonly recordContent: boolean;
  /** SQLite: this process owns the database, so at start-up every unfinished run is its own to resume. */
  readonly ownsDatabase: boolean;
  /** Told about every cell recorded (the evaluation cells metric): passed, failed (scored low) or error (no answer). */
  readonly onCellRecorded?: (status: 'passed' | 'failed' | 'error') => void;
  /**
   * Runs a case inside a span of its own (tracing on): a case runs long after the request that
   * started its run, and must not join that request's trace, nor be lost in start-up's untraced context.
   */
  readonly traceCase?: (job: CaseJob, work: () => Promise<void>) => Promise<void>;
}

/** How often this process looks for runs that were cancelled or ended elsewhere, while it works on some. */
const WATCH_INTERVAL_MS = 250;
/** Errors that stop or retry the run's work rather than fail one cell. */
const runErrors: ReadonlySet<string> = new Set(['budget_exceeded', 'ledger_unavailable']);

/** max_tokens of a judge's answer: a grade and a few words. */
const JUDGE_MAX_TOKENS = 32;

/** What this process holds for a run it works on: definition, prompt templates, and the switch that aborts its cells. */
interface ActiveRun {
  readonly run: Evaluation;
  readonly versions: readonly PromptVersionRecord[];
  readonly scorers: readonly ScorerSpec[];
  readonly abort: AbortController;
  /** Set once this process has moved the run from queued to running. */
  started: boolean;
  /** Why the run is stopping (budget_exceeded): no new cell starts; those in flight finish and are recorded. */
  stopping: string | null;
  /** This process's cells of the run that are generating or scoring. */
  readonly inFlight: Set<Promise<void>>;
}

/** A cell's generation refused for budget: the run ends `failed` with this code. */
class RunStopped extends Error {
  constructor(readonly code: string) {
    super(`the run stopped: ${code}`);
  }
}

/**
 * Runs evaluations as jobs, not requests. A run's unit of work is one case (its prompt x model
 * cells); a queue hands cases to workers, in this process or, with Redis, in any replica. Each cell
 * fills the prompt, generates through the pipeline (source `evaluation`, charged to budgets, not
 * rate limited), scores, and is recorded once with its run's counters; the run ends when its last
 * cell is recorded, when a budget runs out, or when it is cancelled.
 *
 * Surviving a crash: a recorded cell is never redone; a cell in flight at the crash is redone (its
 * lost attempt's ledger row is closed `cancelled` by the ledger's sweep). Without Redis a process
 * claims the runs it works with a lease that it renews; another process takes over a run whose
 * lease ran out. With Redis, BullMQ gives a dead worker's case to another worker.
 */
export class EvaluationRunner {
  private readonly owner = `runner_${randomUUID()}`;
  private readonly active = new Map<string, Promise<ActiveRun | undefined>>();
  private readonly cellSlots: ConcurrencyLimit;
  private queue: CaseQueue | undefined;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(private readonly settings: EvaluationRunnerSettings) {
    this.cellSlots = new ConcurrencyLimit(settings.concurrency);
  }

  /** Starts handing out work: resumes the runs a previous process left, then keeps watching. */
  async start(queue: CaseQueue): Promise<void> {
    this.queue = queue;
    const { leaseMs } = this.settings;
    await this.sweep(this.settings.ownsDatabase);
    this.every(Math.max(100, Math.floor(leaseMs / 3)), () => this.renewLeases());
    this.every(Math.max(200, Math.floor(leaseMs / 2)), () => this.sweep(false));
    this.every(WATCH_INTERVAL_MS, () => this.watch());
  }

  /**
   * The claim a run created in this process is written with, so the replica that accepted it works
   * it: unclaimed between its insert and enqueue(), it went to whichever replica's sweep came first
   * (CI saw that). Undefined when BullMQ shares the cases.
   */
  leaseForNewRun(): { readonly owner: string; readonly leaseMs: number } | undefined {
    if (this.queue?.shared !== false) return undefined;
    return { owner: this.owner, leaseMs: this.settings.leaseMs };
  }

  /** Queues a new run's cases. */
  async enqueue(run: Evaluation): Promise<void> {
    if (!this.queue) throw new Error('the evaluation runner has not started');
    if (!this.queue.shared) {
      const claimed = await this.settings.evaluations.claim(this.owner, this.settings.leaseMs, { ids: [run.id] });
      // Another replica's sweep claimed the new run between its insert and this claim: that replica works it, alone.
      if (!claimed.includes(run.id)) return;
    }
    await this.queue.enqueueRun(run);
  }

  /** Aborts this process's cells of a run that was just cancelled (other processes see it within WATCH_INTERVAL_MS). */
  async stopLocally(evaluationId: string): Promise<void> {
    this.queue?.forget(evaluationId);
    const active = await this.active.get(evaluationId);
    active?.abort.abort();
    this.active.delete(evaluationId);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const pending of this.active.values()) (await pending)?.abort.abort();
    await this.queue?.close();
  }

  /** A case failed every attempt (its database kept failing): its run ends failed. */
  readonly caseFailed = (job: CaseJob, error: unknown): void => {
    this.settings.logger.error({ err: error, evaluationId: job.evaluationId, itemIndex: job.itemIndex }, 'an evaluation case failed');
    const code = error instanceof ApiError ? error.extensions.code : 'internal_error';
    this.endRun(job.evaluationId, 'failed', code).catch((failure: unknown) =>
      this.settings.logger.error({ err: failure, evaluationId: job.evaluationId }, 'an evaluation could not be ended'),
    );
  };

  /** The queue's processor: one case's cells not yet recorded, each within the process's cell slots, as a trace of its own when tracing is on. */
  readonly processCase = (job: CaseJob): Promise<void> =>
    this.settings.traceCase ? this.settings.traceCase(job, () => this.runCase(job)) : this.runCase(job);

  private readonly runCase = async (job: CaseJob): Promise<void> => {
    const { evaluationId, itemIndex } = job;
    const active = await this.activate(evaluationId);
    if (active && this.closed) throw new CaseInterrupted(job);
    if (!active || active.abort.signal.aborted) return;
    const { run } = active;
    if (!active.started) {
      if (run.status === 'queued') await this.settings.evaluations.markRunning(run.id);
      active.started = true;
    }
    const [item] = await this.settings.datasets.items(run.datasetId, itemIndex, 1);
    if (!item) throw new Error(`case ${itemIndex} of dataset ${run.datasetId} is missing`);
    const finished = await this.settings.evaluations.finishedCells(run.id, itemIndex, itemIndex);
    const cells: CellKey[] = [];
    for (let promptIndex = 0; promptIndex < run.prompts.length; promptIndex += 1) {
      for (let modelIndex = 0; modelIndex < run.modelIds.length; modelIndex += 1) {
        const cell = { itemIndex, promptIndex, modelIndex };
        if (!finished.has(cellId(cell))) cells.push(cell);
      }
    }
    const outcomes = await Promise.allSettled(cells.map((cell) => this.cellSlots.run(() => this.tracked(active, cell, item))));
    if (active.stopping) {
      // The cells this process still has in flight (other cases') are recorded before the run ends.
      await Promise.allSettled([...active.inFlight]);
      await this.endRun(run.id, 'failed', active.stopping);
      return;
    }
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw (failure as PromiseRejectedResult).reason;
    // close() aborted this case's cells in flight: they were not recorded, so the case is not done.
    if (this.closed) throw new CaseInterrupted(job);
    await this.endIfComplete(run.id);
  };

  private tracked(
    active: ActiveRun,
    cell: CellKey,
    item: { variables: Readonly<Record<string, string>>; expected: string | null },
  ): Promise<void> {
    const work = this.runCell(active, cell, item);
    active.inFlight.add(work);
    const untrack = (): void => {
      active.inFlight.delete(work);
    };
    work.then(untrack, untrack);
    return work;
  }

  /** One cell: fill, generate, score, record. Throws RunStopped when a budget refused; other failures are the cell's result. */
  private async runCell(
    active: ActiveRun,
    cell: CellKey,
    item: { variables: Readonly<Record<string, string>>; expected: string | null },
  ): Promise<void> {
    const { run, versions, scorers, abort } = active;
    if (abort.signal.aborted || active.stopping) return;
    const version = versions[cell.promptIndex]!;
    const promptRef = run.prompts[cell.promptIndex]!;
    const modelId = run.modelIds[cell.modelIndex]!;
    const call = this.callContext(run, abort.signal);
    const origin = { source: 'evaluation' as const, promptRef, evaluationId: run.id };
    let result: FinishedCell;
    try {
      const prompt = fillTemplate(version.template, item.variables);
      const outcome = await this.settings.pipeline.generate(
        {
          prompt,
          modelId,
          maxTokens: run.parameters.maxTokens ?? version.parameters?.maxTokens,
          temperature: run.parameters.temperature ?? version.parameters?.temperature,
          topP: run.parameters.topP ?? version.parameters?.topP,
          origin,
        },
        call,
      );
      const judge = async (judgePrompt: string, judgeModelId: string): Promise<string> => {
        try {
          const grade = await this.settings.pipeline.generate(
            {
              prompt: judgePrompt,
              modelId: judgeModelId,
              maxTokens: JUDGE_MAX_TOKENS,
              temperature: 0,
              topP: 1,
              origin: { source: 'evaluation', evaluationId: run.id },
            },
            this.callContext(run, abort.signal),
          );
          return grade.text;
        } catch (error) {
          // An upstream failure of the judge is that score's (0, with a note); budgets, the ledger and aborts are the run's.
          if (error instanceof ApiError && !runErrors.has(error.extensions.code) && !abort.signal.aborted) {
            throw new JudgeFailedError(error.extensions.code);
          }
          throw error;
        }
      };
      const scores = await scoreCell(scorers, outcome.text, item.expected, judge);
      result = {
        ...cell,
        generationId: outcome.metadata.generationId,
        text: this.settings.recordContent ? outcome.text : null,
        error: null,
        scores,
        passed: scores.every((score) => score.passed),
        latencyMs: outcome.metrics.latencyMs,
        totalTokens: outcome.metrics.totalTokens,
        costUnits: usdToCostUnits(outcome.metadata.costUsd.total),
      };
    } catch (error) {
      if (abort.signal.aborted) return;
      if (error instanceof ApiError && error.extensions.code === 'budget_exceeded') {
        active.stopping ??= 'budget_exceeded';
        throw new RunStopped('budget_exceeded');
      }
      if (!(error instanceof ApiError) || error.extensions.code === 'ledger_unavailable') throw error;
      // The generation failed: a failed cell, every scorer 0.
      const code = error.extensions.code;
      result = {
        ...cell,
        generationId: failedGenerationId(error),
        text: null,
        error: code,
        scores: scorers.map((scorer) => ({
          scorer: scorer.name,
          score: 0,
          passed: false,
          note: `no score: the generation failed (${code})`,
        })),
        passed: false,
        latencyMs: null,
        totalTokens: 0,
        costUnits: 0,
      };
    }
    await this.settings.evaluations.recordCell(run.id, result);
    this.settings.onCellRecorded?.(result.error !== null ? 'error' : result.passed ? 'passed' : 'failed');
  }

  private callContext(run: Evaluation, signal: AbortSignal): CallContext {
    return {
      requestId: run.id,
      caller: { id: `evaluation:${run.owner.name}`, name: run.owner.name, role: run.owner.role, team: run.owner.team ?? undefined },
      generationLoader: createGenerationLoader(),
      signal,
    };
  }

  /** The run as this process works it, loaded once (its definition never changes); undefined when it is not running. */
  private activate(evaluationId: string): Promise<ActiveRun | undefined> {
    let pending = this.active.get(evaluationId);
    if (!pending) {
      pending = this.load(evaluationId);
      this.active.set(evaluationId, pending);
      pending.then(
        (active) => {
          if (!active && this.active.get(evaluationId) === pending) this.active.delete(evaluationId);
        },
        () => this.active.delete(evaluationId),
      );
    }
    return pending;
  }

  private async load(evaluationId: string): Promise<ActiveRun | undefined> {
    const run = await this.settings.evaluations.get(evaluationId);
    if (!run || (run.status !== 'queued' && run.status !== 'running')) return undefined;
    const versions: PromptVersionRecord[] = [];
    for (const ref of run.prompts) {
      const version = await this.settings.prompts.find(ref.name, ref.version);
      if (!version) {
        await this.endRun(run.id, 'failed', 'prompt_not_found');
        return undefined;
      }
      versions.push(version);
    }
    return {
      run,
      versions,
      scorers: run.scorers as readonly ScorerSpec[],
      abort: new AbortController(),
      started: false,
      stopping: null,
      inFlight: new Set(),
    };
  }

  /** Ends the run once (the first end wins), with its variants frozen, and stops its cells here. */
  async endRun(evaluationId: string, status: 'succeeded' | 'failed' | 'cancelled', error: string | null): Promise<boolean> {
    const run = await this.settings.evaluations.get(evaluationId);
    if (!run) return false;
    const variants = rankVariants(await this.settings.evaluations.variants(run));
    const ended = await this.settings.evaluations.end(evaluationId, status, error, variants);
    if (ended) this.settings.logger.info({ evaluationId, status, error }, 'evaluation ended');
    await this.stopLocally(evaluationId);
    return ended;
  }

  private async endIfComplete(evaluationId: string): Promise<void> {
    const run = await this.settings.evaluations.get(evaluationId);
    if (run && run.status === 'running' && run.completed >= run.total) await this.endRun(evaluationId, 'succeeded', null);
  }

  /** Claims and queues runs nobody works on (a dead process's), and ends runs whose every cell is recorded. */
  private async sweep(evenIfHeld: boolean): Promise<void> {
    const { evaluations } = this.settings;
    for (const id of await evaluations.complete()) await this.endRun(id, 'succeeded', null);
    if (!this.queue || this.closed) return;
    if (this.queue.shared) {
      // BullMQ keeps the cases; a run whose cases were never added (its process died first) is added again.
      for (const run of await evaluations.unfinished(new Date(Date.now() - this.settings.leaseMs))) {
        if (run.status === 'queued') await this.queue.enqueueRun(run);
      }
      return;
    }
    const claimed = await evaluations.claim(this.owner, this.settings.leaseMs, { evenIfHeld });
    for (const id of claimed) {
      const run = await evaluations.get(id);
      if (run) await this.queue.enqueueRun(run);
    }
  }

  /**
   * Keeps this process's claims on the runs it works or has queued. A claim that was lost (this
   * process stalled past its lease and another took the run over) stops the work here.
   */
  private async renewLeases(): Promise<void> {
    if (this.queue?.shared !== false) return;
    const mine = [...new Set([...this.active.keys(), ...this.queue.localRuns()])];
    const held = new Set(await this.settings.evaluations.renew(this.owner, mine, this.settings.leaseMs));
    for (const id of mine) if (!held.has(id)) await this.stopLocally(id);
  }

  /** Stops cells of runs that ended elsewhere (a cancel on another replica, a budget stop). */
  private async watch(): Promise<void> {
    if (this.active.size === 0) return;
    const statuses = await this.settings.evaluations.statuses([...this.active.keys()]);
    for (const id of this.active.keys()) {
      const status = statuses.get(id);
      if (status !== 'queued' && status !== 'running') await this.stopLocally(id);
    }
  }

  private every(intervalMs: number, task: () => Promise<void>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.closed) return;
      busy = true;
      task()
        .catch((error: unknown) => this.settings.logger.error({ err: error }, 'evaluation runner background task failed'))
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    timer.unref();
    this.timers.push(timer);
  }
}
