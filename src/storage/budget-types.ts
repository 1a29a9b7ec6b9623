import type { BudgetPeriod } from './budget-periods';

export const BUDGET_SCOPES = ['global', 'team', 'key'] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];

/** A new budget. Money is in cost units (1e-10 USD, see cost-units.ts). */
export interface BudgetInput {
  readonly scope: BudgetScope;
  /** The team or key name (non-empty); null or absent for `global`. */
  readonly subject?: string | null;
  /** Only generations of this model count (non-empty); null or absent for every model. */
  readonly modelId?: string | null;
  readonly limitUnits: number;
  readonly period: BudgetPeriod;
}

/** A budget as stored. */
export interface Budget {
  readonly id: string;
  readonly scope: BudgetScope;
  readonly subject: string | null;
  readonly modelId: string | null;
  readonly limitUnits: number;
  readonly period: BudgetPeriod;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A budget with its counters for the period containing a given instant. */
export interface BudgetState extends Budget {
  /** Settled cost of the period. */
  readonly spentUnits: number;
  /** Held for generations in flight. */
  readonly reservedUnits: number;
  /** limit - spent - reserved, never below 0. */
  readonly remainingUnits: number;
  /** Null for `total`. */
  readonly periodStart: Date | null;
  /** Null for `total`. */
  readonly resetsAt: Date | null;
}

/** Who is asking: the budgets that apply to a generation are chosen by these. */
export interface BudgetSubject {
  /** The key's name. */
  readonly caller: string;
  readonly team: string | null;
  readonly modelId: string;
}

/** A period counter after a reservation or a settlement. */
export interface BudgetCounter {
  readonly budgetId: string;
  /** The counter's period: its start in epoch milliseconds, 0 for `total`. */
  readonly periodStartMs: number;
  readonly spentUnits: number;
  readonly reservedUnits: number;
  readonly limitUnits: number;
}

/** A budget that had no room: nothing was reserved on any budget. */
export interface BudgetRefusal {
  readonly budgetId: string;
  readonly limitUnits: number;
  readonly spentUnits: number;
  readonly reservedUnits: number;
  /** limit - spent - reserved when it refused, never below 0. */
  readonly remainingUnits: number;
}

export type ReserveResult =
  | { readonly ok: true; readonly counters: readonly BudgetCounter[] }
  | { readonly ok: false; readonly refusal: BudgetRefusal };
