import type { ModelPricing } from '../providers/provider';

export interface CostBreakdown {
  readonly input: number;
  readonly output: number;
  readonly total: number;
}

// Prices are per million tokens; rounding to 1e-10 USD hides floating-point noise, not money.
const roundUsd = (amount: number): number => Math.round(amount * 1e10) / 1e10;

/** Cost in USD of one call; zero for models without a price (self-hosted, unpriced). */
export function computeCost(pricing: ModelPricing | undefined, inputTokens: number, outputTokens: number): CostBreakdown {
  if (!pricing) return { input: 0, output: 0, total: 0 };
  const input = roundUsd((inputTokens * pricing.inputPerMillion) / 1_000_000);
  const output = roundUsd((outputTokens * pricing.outputPerMillion) / 1_000_000);
  return { input, output, total: roundUsd(input + output) };
}

export function sumCosts(costs: readonly CostBreakdown[]): CostBreakdown {
  const input = roundUsd(costs.reduce((sum, cost) => sum + cost.input, 0));
  const output = roundUsd(costs.reduce((sum, cost) => sum + cost.output, 0));
  return { input, output, total: roundUsd(input + output) };
}
