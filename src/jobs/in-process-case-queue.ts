import { CaseInterrupted, type CaseJob, type CaseProcessor, type CaseQueue } from './case-queue';

interface QueuedRun {
  readonly id: string;
  readonly caseCount: number;
  nextItem: number;
}

/** How often a case whose processing failed (the database was unreachable) is tried again, and how long after. */
const MAX_CASE_ATTEMPTS = 5;
const RETRY_DELAY_MS = 1000;

/**
 * Runs' cases handed to at most `concurrency` workers in this process, runs in the order they
 * came. A run's cases are not materialized: each run keeps the index of its next case.
 */
export class InProcessCaseQueue implements CaseQueue {
  readonly shared = false;
  private readonly runs: QueuedRun[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly retries: Array<{ readonly job: CaseJob; readonly attempt: number }> = [];
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly process: CaseProcessor,
    private readonly concurrency: number,
    /** Told of a case that failed every attempt; the runner ends its run. */
    private readonly onCaseFailed: (job: CaseJob, error: unknown) => void,
  ) {}

  async enqueueRun(run: { readonly id: string; readonly caseCount: number }): Promise<void> {
    if (this.closed || this.runs.some((queued) => queued.id === run.id)) return;
    this.runs.push({ id: run.id, caseCount: run.caseCount, nextItem: 0 });
    this.pump();
  }

  /** Whether the run still has cases waiting or running here. */
  has(evaluationId: string): boolean {
    return this.runs.some((run) => run.id === evaluationId);
  }

  localRuns(): string[] {
    return this.runs.map((run) => run.id);
  }

  forget(evaluationId: string): void {
    const index = this.runs.findIndex((run) => run.id === evaluationId);
    if (index >= 0) this.runs.splice(index, 1);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.runs.length = 0;
    await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.concurrency) {
      const job = this.take();
      if (!job) return;
      const work = this.attempt(job.job, job.attempt).finally(() => {
        this.running.delete(work);
        this.pump();
      });
      this.running.add(work);
    }
  }

  private take(): { job: CaseJob; attempt: number } | undefined {
    const retry = this.retries.shift();
    if (retry) return retry;
    for (const run of this.runs) {
      if (run.nextItem < run.caseCount) return { job: { evaluationId: run.id, itemIndex: run.nextItem++ }, attempt: 1 };
    }
    return undefined;
  }

  private async attempt(job: CaseJob, attempt: number): Promise<void> {
    try {
      await this.process(job);
    } catch (error) {
      if (error instanceof CaseInterrupted) return;
      if (attempt >= MAX_CASE_ATTEMPTS || this.closed) {
        this.onCaseFailed(job, error);
        return;
      }
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        this.retries.push({ job, attempt: attempt + 1 });
        this.pump();
      }, RETRY_DELAY_MS * attempt);
      timer.unref();
      this.retryTimers.add(timer);
    }
  }
}
