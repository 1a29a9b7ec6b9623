import { ArgsType, Field, Float } from 'type-graphql';
import { BudgetPeriod, BudgetScope } from './budget.type';

@ArgsType()
export class BudgetIdArgs {
  @Field({ description: 'The budget id.' })
  budget_id!: string;
}

@ArgsType()
export class CreateBudgetArgs {
  @Field(() => BudgetScope, { description: 'Whose generations it counts.' })
  scope!: keyof typeof BudgetScope;

  @Field(() => String, { nullable: true, description: 'The team or key name: required for team and key, left out for global.' })
  subject?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'Only generations of this model count (and are held back); leave it out for every model.',
  })
  model_id?: string | null;

  @Field(() => Float, { description: 'The most a period may spend, in USD (0 or more; rounded to 1e-10 USD).' })
  limit_usd!: number;

  @Field(() => BudgetPeriod, { description: 'How often it starts again from zero (UTC calendar periods; weeks start on Monday).' })
  period!: keyof typeof BudgetPeriod;
}

@ArgsType()
export class UpdateBudgetArgs extends BudgetIdArgs {
  @Field(() => Float, { description: 'The new limit in USD (0 or more; rounded to 1e-10 USD), effective for the next generation.' })
  limit_usd!: number;
}
