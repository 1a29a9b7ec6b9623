import { Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import type { BudgetState } from '../../storage/budget-types';
import { costUnitsToUsd } from '../../storage/cost-units';
import { BudgetIdArgs, CreateBudgetArgs, UpdateBudgetArgs } from './budget.args';
import { Budget, BudgetList } from './budget.type';

/** A stored budget as the schema shows it: money in USD. */
const toBudget = (state: BudgetState): Budget => ({
  id: state.id,
  scope: state.scope,
  subject: state.subject,
  modelId: state.modelId,
  limitUsd: costUnitsToUsd(state.limitUnits),
  period: state.period,
  spentUsd: costUnitsToUsd(state.spentUnits),
  reservedUsd: costUnitsToUsd(state.reservedUnits),
  remainingUsd: costUnitsToUsd(state.remainingUnits),
  periodStart: state.periodStart,
  resetsAt: state.resetsAt,
  createdAt: state.createdAt,
});

@Resolver()
export class BudgetResolver {
  @Query(() => BudgetList, { description: 'Every budget with its spend in the current period (admins).' })
  async budgets(@Ctx() context: RequestContext): Promise<BudgetList> {
    const budgets = await context.services.budgets.list(context.caller);
    return { budgets: budgets.map(toBudget) };
  }

  @Query(() => Budget, { description: 'One budget with its spend (admins: any; members: those that apply to their key).' })
  async budget(@Args() args: BudgetIdArgs, @Ctx() context: RequestContext): Promise<Budget> {
    return toBudget(await context.services.budgets.get(context.caller, args.budget_id));
  }

  @Mutation(() => Budget, { description: 'Creates a budget (admins); generations already in the ledger for its period count.' })
  async create_budget(@Args() args: CreateBudgetArgs, @Ctx() context: RequestContext): Promise<Budget> {
    const budget = await context.services.budgets.create(context.caller, {
      scope: args.scope,
      subject: args.subject,
      modelId: args.model_id,
      limitUsd: args.limit_usd,
      period: args.period,
    });
    return toBudget(budget);
  }

  @Mutation(() => Budget, { description: "Changes a budget's limit (admins)." })
  async update_budget(@Args() args: UpdateBudgetArgs, @Ctx() context: RequestContext): Promise<Budget> {
    return toBudget(await context.services.budgets.update(context.caller, args.budget_id, args.limit_usd));
  }

  @Mutation(() => Boolean, { description: 'Removes a budget (admins); it stops applying at once. True when removed.' })
  delete_budget(@Args() args: BudgetIdArgs, @Ctx() context: RequestContext): Promise<boolean> {
    return context.services.budgets.delete(context.caller, args.budget_id);
  }
}
