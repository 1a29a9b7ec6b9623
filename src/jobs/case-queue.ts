/** One case of one run: the unit of work a queue hands out (all the case's prompt x model cells). */
export interface CaseJob {
  readonly evaluationId: string;
  readonly itemIndex: number;
}

/** Does one case's cells; resolves when they are recorded (or the run stopped), rejects when the case should be tried again. */
export type CaseProcessor = (job: CaseJob) => Promise<void>;

/**
 * Thrown by the processor when this process is stopping and aborted the case's cells: the case is
 * not done. BullMQ puts it back for another replica (no attempt counted); in this process it is
 * dropped, and whichever process resumes the run does it.
 */
export class CaseInterrupted extends Error {
  constructor(job: CaseJob) {
    super(`case ${job.itemIndex} of ${job.evaluationId} was interrupted: this process is stopping`);
  }
}

/**
 * Where a run's cases wait for a worker: in this process (InProcessCaseQueue), or in BullMQ on
 * Redis, shared by every replica (BullCaseQueue). Enqueueing a run twice is harmless: a case's
 * cells that are already recorded are skipped.
 */
export interface CaseQueue {
  /** Whether cases survive this process and are shared with other replicas (BullMQ). */
  readonly shared: boolean;
  enqueueRun(run: { readonly id: string; readonly caseCount: number }): Promise<void>;
  /** The runs with cases waiting or running here (this process's leases cover them); none for a shared queue. */
  localRuns(): string[];
  /** Drops a run's waiting cases (cancelled or ended); cases already running finish or abort on their own. */
  forget(evaluationId: string): void;
  /** Stops handing out cases and waits for the running ones. */
  close(): Promise<void>;
}
