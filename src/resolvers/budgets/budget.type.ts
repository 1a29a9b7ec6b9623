import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';
import { BUDGET_PERIODS } from '../../storage/budget-periods';
import { BUDGET_SCOPES } from '../../storage/budget-types';
import { enumOf } from '../shared/enums';
import { DateTimeISO } from '../shared/scalars';

export const BudgetScope = enumOf(BUDGET_SCOPES);
registerEnumType(BudgetScope, {
  name: 'BudgetScope',
  description: 'Whose generations a budget counts.',
  valuesConfig: {
    global: { description: "Everyone's." },
    team: { description: "One team's (subject: the team's name)." },
    key: { description: "One key's (subject: the key's name)." },
  },
});

export const BudgetPeriod = enumOf(BUDGET_PERIODS);
registerEnumType(BudgetPeriod, {
  name: 'BudgetPeriod',
  description: 'How often a budget starts again from zero: calendar periods in UTC.',
  valuesConfig: {
    day: { description: 'A UTC calendar day.' },
    week: { description: 'A week from Monday 00:00 UTC.' },
    month: { description: 'A UTC calendar month.' },
    total: { description: 'Never: one period forever.' },
  },
});

@ObjectType({ description: 'A spending limit on generations, with its spend in the current period. Money is in USD.' })
export class Budget {
  @Field({ description: 'The budget id.' })
  id!: string;

  @Field(() => BudgetScope, { description: 'Whose generations it counts.' })
  scope!: keyof typeof BudgetScope;

  @Field(() => String, { nullable: true, description: 'The team or key name; null for global.' })
  subject!: string | null;

  @Field(() => String, { name: 'model_id', nullable: true, description: 'Only generations of this model count; null for every model.' })
  modelId!: string | null;

  @Field(() => Float, { name: 'limit_usd', description: 'The most a period may spend, in USD.' })
  limitUsd!: number;

  @Field(() => BudgetPeriod, { description: 'How often it starts again from zero.' })
  period!: keyof typeof BudgetPeriod;

  @Field(() => Float, { name: 'spent_usd', description: 'Settled cost in the current period, in USD.' })
  spentUsd!: number;

  @Field(() => Float, { name: 'reserved_usd', description: 'Held for generations in flight, in USD.' })
  reservedUsd!: number;

  @Field(() => Float, { name: 'remaining_usd', description: 'limit - spent - reserved, never below 0, in USD.' })
  remainingUsd!: number;

  @Field(() => DateTimeISO, { name: 'period_start', nullable: true, description: 'When the current period started (UTC); null for total.' })
  periodStart!: Date | null;

  @Field(() => DateTimeISO, { name: 'resets_at', nullable: true, description: 'When the next period starts (UTC); null for total.' })
  resetsAt!: Date | null;

  @Field(() => DateTimeISO, { name: 'created_at', description: 'When the budget was created (UTC).' })
  createdAt!: Date;
}

@ObjectType({ description: 'Every budget, oldest first.' })
export class BudgetList {
  @Field(() => [Budget], { description: 'The budgets, each with its spend in its current period.' })
  budgets!: readonly Budget[];
}
