import { budgetNotFound, conflict, forbidden, ledgerUnavailable, validationError } from '../errors/api-error';
import { callLedger } from './ledger-call';
import type { Caller } from '../pipeline/caller';
import { BudgetConflictError, BudgetVanishedError } from '../storage/budget-errors';
import type { BudgetPeriod } from '../storage/budget-periods';
import type { BudgetRepository } from '../storage/budget-repository';
import type { BudgetScope, BudgetState } from '../storage/budget-types';
import { usdToCostUnits } from '../storage/cost-units';

/** A new budget as a client asks for it: money in USD. */
export interface BudgetRequest {
  readonly scope: BudgetScope;
  /** The team or key name: required for `team` and `key`, refused for `global`. */
  readonly subject?: string | null;
  /** Only generations of this model count; null or absent for every model. */
  readonly modelId?: string | null;
  readonly limitUsd: number;
  readonly period: BudgetPeriod;
}

const INVALID = 'Invalid request parameters';

/**
 * Budget management with the roles applied: admins list, create, change and remove budgets; a
 * member may only read the budgets that apply to their own key (the global ones, their team's and
 * their key's). Any other budget is not found to a member, exactly like a missing one.
 */
export class BudgetService {
  constructor(
    /** Undefined with LEDGER=off: budgets live in the ledger's database, so there are none to manage. */
    private readonly repository: BudgetRepository | undefined,
    /** Told about database failures; callers see ledger_unavailable. */
    private readonly onError: (error: unknown) => void,
  ) {}

  list(caller: Caller): Promise<BudgetState[]> {
    const repository = this.available();
    requireAdmin(caller, 'list');
    return this.read(() => repository.list());
  }

  async get(caller: Caller, budgetId: string): Promise<BudgetState> {
    const repository = this.available();
    const budget = await this.read(() => repository.get(budgetId));
    // A member learns nothing about budgets that do not apply to them: those look exactly like missing ones.
    if (!budget || !appliesTo(caller, budget)) throw budgetNotFound(budgetId);
    return budget;
  }

  async create(caller: Caller, request: BudgetRequest): Promise<BudgetState> {
    const repository = this.available();
    requireAdmin(caller, 'create');
    const subject = validSubject(request.scope, request.subject);
    const modelId = request.modelId ?? null;
    if (modelId !== null && modelId === '') throw validationError(INVALID, 'model_id: must not be empty (leave it out for every model)');
    const limitUnits = limitInUnits(request.limitUsd);
    try {
      return await this.read(() => repository.create({ scope: request.scope, subject, modelId, limitUnits, period: request.period }));
    } catch (error) {
      if (error instanceof BudgetConflictError)
        throw conflict(error.message, 'scope, subject, model_id and period: a budget exists already');
      throw error;
    }
  }

  async update(caller: Caller, budgetId: string, limitUsd: number): Promise<BudgetState> {
    const repository = this.available();
    requireAdmin(caller, 'change');
    const limitUnits = limitInUnits(limitUsd);
    const budget = await this.read(() => repository.update(budgetId, limitUnits));
    if (!budget) throw budgetNotFound(budgetId);
    return budget;
  }

  async delete(caller: Caller, budgetId: string): Promise<true> {
    const repository = this.available();
    requireAdmin(caller, 'remove');
    const deleted = await this.read(() => repository.delete(budgetId));
    if (!deleted) throw budgetNotFound(budgetId);
    return true;
  }

  private available(): BudgetRepository {
    if (!this.repository) throw ledgerUnavailable('the ledger is off (LEDGER=off): budgets live in its database');
    return this.repository;
  }

  private read<T>(query: () => Promise<T>): Promise<T> {
    return callLedger(query, this.onError, (error) => {
      if (error instanceof BudgetConflictError) return error;
      // Created, then removed by another request before it could be read back.
      if (error instanceof BudgetVanishedError) return budgetNotFound(error.budgetId);
      return undefined;
    });
  }
}

function requireAdmin(caller: Caller, action: string): void {
  if (caller.role !== 'admin') throw forbidden('Budgets are managed by admins', `a member may not ${action} budgets`);
}

/** Whether a budget applies to the caller's key: global, their team's or their key's (whatever its model). */
function appliesTo(caller: Caller, budget: BudgetState): boolean {
  if (caller.role === 'admin') return true;
  switch (budget.scope) {
    case 'global':
      return true;
    case 'team':
      return caller.team !== undefined && budget.subject === caller.team;
    case 'key':
      return budget.subject === caller.name;
    default:
      return false;
  }
}

function validSubject(scope: BudgetScope, subject: string | null | undefined): string | null {
  if (scope === 'global') {
    if (subject !== null && subject !== undefined) throw validationError(INVALID, 'subject: a global budget has no subject; leave it out');
    return null;
  }
  if (typeof subject !== 'string' || subject === '') {
    throw validationError(INVALID, `subject: required for a ${scope} budget (the ${scope === 'team' ? "team's" : "key's"} name)`);
  }
  return subject;
}

/** USD as cost units (1e-10 USD): finer amounts are rounded to the nearest unit. */
function limitInUnits(limitUsd: number): number {
  if (!Number.isFinite(limitUsd) || limitUsd < 0) throw validationError(INVALID, 'limit_usd: must be a finite number of USD, 0 or more');
  try {
    return usdToCostUnits(limitUsd);
  } catch (error) {
    if (error instanceof RangeError) throw validationError(INVALID, `limit_usd: ${limitUsd} USD is too large to count exactly`);
    throw error;
  }
}
