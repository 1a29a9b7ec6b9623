/** One case of one run: the unit of work a queue hands out (all the case's prompt x model cells). */
export interface CaseJob {
  readonly evaluationId: string;
  readonly itemIndex: number;
}

/** Does one case's cells; resolves when they are recorded (or the run stopped), rejects when the case should be tried again. */
export type CaseProcessor = (job: CaseJob) => Promise<void>;

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
