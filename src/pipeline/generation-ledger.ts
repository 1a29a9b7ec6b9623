import type { GenerationOutcome, GenerationStart } from '../storage/ledger-types';

/**
 * Where the pipeline writes every generation: a row when it starts (before any upstream call, so a
 * crash leaves a trace that the next start closes as cancelled) and the same row when it ends.
 * Both resolve once committed: a generation is answered only after its row is durable.
 */
export interface GenerationLedger {
  start(generation: GenerationStart): Promise<void>;
  /**
   * Starts generations that budgets apply to: each one's worst case (`amountsUnits`, in order) is
   * held on every budget in the transaction that commits their rows, all or nothing; rejects with
   * BudgetRefusedError when a budget has no room. Their `finish` settles the hold.
   */
  startHeld(
    generations: readonly GenerationStart[],
    hold: { readonly budgetIds: readonly string[]; readonly amountsUnits: readonly number[] },
  ): Promise<void>;
  finish(id: string, outcome: GenerationOutcome): Promise<void>;
}

/** LEDGER=off, for benchmarks that measure what recording costs: nothing is written. */
export const unrecordedLedger: GenerationLedger = {
  start: () => Promise.resolve(),
  startHeld: () => Promise.resolve(),
  finish: () => Promise.resolve(),
};
