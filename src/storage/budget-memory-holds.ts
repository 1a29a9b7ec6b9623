import type { BudgetPeriod } from './budget-periods';
import type { BudgetCounter } from './budget-types';

/** What this process knows of a budget's counter for one period: read from the database, then kept up to date. */
export interface KnownCounter {
  readonly period: BudgetPeriod;
  readonly limitUnits: number;
  /** The counter's period start (ms; 0 for a total budget). */
  readonly periodStartMs: number;
  /** Committed spend and holds on the counter row (the latter only from before holds were kept in memory). */
  spentUnits: number;
  reservedUnits: number;
}

/** One generation's hold: the counters it is held on and how much. */
interface GenerationHold {
  readonly counterKeys: readonly string[];
  readonly units: number;
}

/**
 * Budget holds kept in this process's memory, for a database that this process alone writes (the
 * embedded SQLite file, under its owner lock): a held start is then an ordinary row write, with no
 * counter update in its transaction, and checking the room is a few lookups here, no query.
 *
 * Each budget's counter is read once (per period, and again after any change to a budget) and then
 * follows every settlement that commits: spend only grows within a period, so a settlement's
 * counter is taken when it shows more spend than known, and one that arrives late is not. Each
 * generation's hold is released exactly once, by whoever settles it (its finish, or the sweep that
 * closes it at the full amount), right after that settlement's counter is taken; or by its start
 * when its row could not be written. Between a settlement's commit and that moment the hold still
 * counts: refusing a little too much for a moment, never allowing too much. A process that dies
 * loses these holds, not the money: its rows are still in progress, with `reserved_units` and
 * `budget_ids`, and the next start settles them at the full amount before serving.
 */
export class MemoryHolds {
  private readonly counters = new Map<string, KnownCounter>();
  /** Units held per counter key (`counterKey`). */
  private readonly heldByCounter = new Map<string, number>();
  private readonly byGeneration = new Map<string, GenerationHold>();

  /** What is known of a budget's counter (for the period it was read for: compare `periodStartMs`). */
  known(budgetId: string): KnownCounter | undefined {
    return this.counters.get(budgetId);
  }

  /** Keeps a counter just read from the database (replacing what was known of that budget). */
  remember(budgetId: string, counter: KnownCounter): void {
    this.counters.set(budgetId, counter);
  }

  /** Forgets every known counter (a budget was created, changed or deleted): each is read again when next needed. */
  forgetCounters(): void {
    this.counters.clear();
  }

  /** Follows committed settlements: each counter's spend (and row holds) where it is more than known. */
  observe(settled: readonly BudgetCounter[]): void {
    for (const counter of settled) {
      const known = this.counters.get(counter.budgetId);
      if (!known || known.periodStartMs !== counter.periodStartMs || counter.spentUnits <= known.spentUnits) continue;
      known.spentUnits = counter.spentUnits;
      known.reservedUnits = counter.reservedUnits;
    }
  }

  /** Units held here on one counter. */
  heldOn(counterKey: string): number {
    return this.heldByCounter.get(counterKey) ?? 0;
  }

  /** Whether this generation's hold is here (not yet released). */
  has(generationId: string): boolean {
    return this.byGeneration.has(generationId);
  }

  /** Holds `units` on each counter for a generation; the caller has checked that they fit. */
  hold(generationId: string, counterKeys: readonly string[], units: number): void {
    if (this.byGeneration.has(generationId)) throw new Error(`generation ${generationId} already holds budget money`);
    this.byGeneration.set(generationId, { counterKeys, units });
    for (const key of counterKeys) this.heldByCounter.set(key, this.heldOn(key) + units);
  }

  /** Gives a generation's hold back; false when it was not here (released already, or never held). */
  release(generationId: string): boolean {
    const hold = this.byGeneration.get(generationId);
    if (!hold) return false;
    this.byGeneration.delete(generationId);
    for (const key of hold.counterKeys) {
      const left = this.heldOn(key) - hold.units;
      if (left > 0) this.heldByCounter.set(key, left);
      else this.heldByCounter.delete(key);
    }
    return true;
  }
}

/** A counter's key: its budget and the start of its period (ms; 0 for a total budget), as budget_usage keys it. */
export const counterKey = (budgetId: string, periodStartMs: number): string => `${budgetId}@${periodStartMs}`;
