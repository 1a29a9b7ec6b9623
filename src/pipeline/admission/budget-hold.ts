import { budgetExceeded, type ApiError } from '../../errors/api-error';
import type { ModelDescriptor } from '../../providers/provider';
import type { BudgetRefusal } from '../../storage/budget-types';
import { costUnitsToUsd, usdToCostUnits } from '../../storage/cost-units';
import { computeCost } from '../cost';

/** What the pipeline asks of budgets (BudgetRepository in production). */
export interface BudgetLookup {
  /** The budgets that apply to a caller's generation with a model. */
  applying(subject: {
    readonly caller: string;
    readonly team: string | null;
    readonly modelId: string;
  }): Promise<readonly { readonly id: string }[]>;
  /** A budget's room left in the period containing `at`; undefined once deleted. */
  get(id: string, at: Date): Promise<{ readonly remainingUnits: number } | undefined>;
}

/**
 * The most a prompt can cost, in cost units: its input tokens at the input price plus `maxTokens` at the
 * output price, at the dearest of the models that may serve it (the one asked for and its fallbacks).
 */
export function worstCaseUnits(models: readonly ModelDescriptor[], inputTokens: number, maxTokens: number): number {
  return Math.max(0, ...models.map((model) => usdToCostUnits(computeCost(model.pricing, inputTokens, maxTokens).total)));
}

/** The largest max_tokens whose worst case fits `remainingUnits` (0 when not even one output token does). */
export function affordableMaxTokens(
  models: readonly ModelDescriptor[],
  inputTokens: number,
  remainingUnits: number,
  ceiling: number,
): number {
  let low = 0;
  let high = ceiling;
  // The cost rounds to 1e-10 USD, so search instead of dividing: the answer is exact under that rounding.
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (worstCaseUnits(models, inputTokens, middle) <= remainingUnits) low = middle;
    else high = middle - 1;
  }
  return low;
}

export function budgetRefusal(refusal: BudgetRefusal, neededUnits: number): ApiError {
  const usd = (units: number): string => `$${costUnitsToUsd(units).toFixed(10).replace(/0+$/, '').replace(/\.$/, '')}`;
  return budgetExceeded(
    `budget ${refusal.budgetId} has ${usd(refusal.remainingUnits)} left of ${usd(refusal.limitUnits)} ` +
      `(${usd(refusal.spentUnits)} spent, ${usd(refusal.reservedUnits)} held); this request needs up to ${usd(neededUnits)}`,
  );
}
