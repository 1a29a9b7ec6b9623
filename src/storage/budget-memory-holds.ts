/** One generation's hold: the counters it is held on and how much. */
interface GenerationHold {
  readonly counterKeys: readonly string[];
  readonly units: number;
}

/**
 * Budget holds kept in this process's memory, for a database that this process alone writes (the
 * embedded SQLite file, under its owner lock): a held start is then an ordinary row write, with no
 * counter update in its transaction. A counter's room is its committed spend and table holds (read
 * at once from the database) less what is held here.
 *
 * Each generation's hold is released exactly once, by whoever settles it (its finish, or the sweep
 * that closes it at the full amount) once that settlement has committed, or by its start when the
 * row could not be written. Until then it counts, so between a settlement's commit and its release
 * the spend counts twice: a moment of refusing too much, never of allowing too much. A process that
 * dies loses these holds, not the money: its rows are still in progress, with `reserved_units` and
 * `budget_ids`, and the next start settles them at the full amount before serving.
 */
export class MemoryHolds {
  /** Units held per counter key (budget id and period start: `counterKey`). */
  private readonly heldByCounter = new Map<string, number>();
  private readonly byGeneration = new Map<string, GenerationHold>();

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
