/**
 * A budget's period: a UTC calendar day, a week from Monday 00:00 UTC, a UTC calendar month, or
 * `total` (one period forever). Spend is counted per period; a new period starts from zero.
 */
export const BUDGET_PERIODS = ['day', 'week', 'month', 'total'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export interface PeriodBounds {
  /** The first instant of the period containing `at`; null for `total`. */
  readonly start: Date | null;
  /** The first instant of the next period (exclusive end); null for `total`. */
  readonly resetsAt: Date | null;
}

const DAY_MS = 86_400_000;

/** The period of kind `period` that contains the instant `at` (UTC calendar periods). */
export function periodOf(period: BudgetPeriod, at: Date): PeriodBounds {
  const time = at.getTime();
  if (!Number.isFinite(time)) throw new RangeError('a budget period needs a valid date');
  switch (period) {
    case 'day': {
      const start = Math.floor(time / DAY_MS) * DAY_MS;
      return { start: new Date(start), resetsAt: new Date(start + DAY_MS) };
    }
    case 'week': {
      const dayStart = Math.floor(time / DAY_MS) * DAY_MS;
      // getUTCDay: 0 is Sunday; days since the last Monday.
      const sinceMonday = (new Date(dayStart).getUTCDay() + 6) % 7;
      const start = dayStart - sinceMonday * DAY_MS;
      return { start: new Date(start), resetsAt: new Date(start + 7 * DAY_MS) };
    }
    case 'month': {
      const year = at.getUTCFullYear();
      const month = at.getUTCMonth();
      return { start: new Date(Date.UTC(year, month, 1)), resetsAt: new Date(Date.UTC(year, month + 1, 1)) };
    }
    case 'total':
      return { start: null, resetsAt: null };
    default:
      throw new TypeError(`unknown budget period "${String(period)}"`);
  }
}

/**
 * The key of the period's counter row (budget_usage.period_start): its start in epoch
 * milliseconds, 0 for `total`.
 */
export function periodStartMs(period: BudgetPeriod, at: Date): number {
  return periodOf(period, at).start?.getTime() ?? 0;
}

export function isBudgetPeriod(value: unknown): value is BudgetPeriod {
  return typeof value === 'string' && (BUDGET_PERIODS as readonly string[]).includes(value);
}
