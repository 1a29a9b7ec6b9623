import type { Budget, BudgetSubject } from './budget-types';

/**
 * Every budget, indexed by whom it applies to: answers "which budgets apply to this generation"
 * without a query. Immutable: a change to the budgets makes a new directory.
 */
export class BudgetDirectory {
  /** By `scope` and subject (`global` has none), each list oldest first. */
  private readonly byHolder = new Map<string, Budget[]>();

  /** `budgets` oldest first (created_at, then id), as the table is read. */
  constructor(budgets: readonly Budget[]) {
    for (const budget of budgets) {
      const key = holderKey(budget.scope, budget.subject);
      const list = this.byHolder.get(key);
      if (list) list.push(budget);
      else this.byHolder.set(key, [budget]);
    }
  }

  /**
   * The budgets that apply to a generation: the global ones, its team's and its key's, each either
   * for every model or for its model. Oldest first, like BudgetRepository's query.
   */
  applying(subject: BudgetSubject): Budget[] {
    const lists = [this.byHolder.get(holderKey('global', null)), this.byHolder.get(holderKey('key', subject.caller))];
    if (subject.team !== null) lists.push(this.byHolder.get(holderKey('team', subject.team)));
    const applying: Budget[] = [];
    for (const list of lists) {
      for (const budget of list ?? []) if (budget.modelId === null || budget.modelId === subject.modelId) applying.push(budget);
    }
    return applying.sort(oldestFirst);
  }
}

// A scope never contains the separator: names may hold any character but start after it.
const holderKey = (scope: string, subject: string | null): string => `${scope}:${subject ?? ''}`;

function oldestFirst(left: Budget, right: Budget): number {
  const byAge = left.createdAt.getTime() - right.createdAt.getTime();
  if (byAge !== 0) return byAge;
  return left.id < right.id ? -1 : left.id > right.id ? 1 : 0;
}
