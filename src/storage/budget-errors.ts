import type { BudgetPeriod } from './budget-periods';
import type { BudgetRefusal, BudgetScope } from './budget-types';

/** A budget with the same scope, subject, model and period exists already (the service answers 409 conflict). */
export class BudgetConflictError extends Error {
  override readonly name = 'BudgetConflictError';

  constructor(
    readonly scope: BudgetScope,
    readonly subject: string | null,
    readonly modelId: string | null,
    readonly period: BudgetPeriod,
  ) {
    super(
      `A ${period} budget for ${scope === 'global' ? 'everyone' : `${scope} "${subject}"`}` +
        `${modelId === null ? '' : ` and model "${modelId}"`} exists already`,
    );
  }
}

/**
 * A budget named in a reservation does not exist (it was deleted after the caller looked it up).
 * `reserve` leaves such a budget out and tries again; a caller running `reserveStatements` itself
 * gets this from `BudgetRepository.refusalOf`.
 */
export class BudgetVanishedError extends Error {
  override readonly name = 'BudgetVanishedError';

  constructor(readonly budgetId: string) {
    super(`Budget "${budgetId}" no longer exists`);
  }
}

/** A budget that applies had no room for the hold: nothing was started (the pipeline answers 402 budget_exceeded). */
export class BudgetRefusedError extends Error {
  override readonly name = 'BudgetRefusedError';

  constructor(readonly refusal: BudgetRefusal) {
    super(`Budget "${refusal.budgetId}" has ${refusal.remainingUnits} cost units left`);
  }
}
