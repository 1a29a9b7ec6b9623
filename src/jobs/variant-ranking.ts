import type { VariantSummary } from '../storage/evaluation-types';

/** Higher first, a variant with no value (nothing completed) last. */
const descending = (a: number | null, b: number | null): number => (b ?? Number.NEGATIVE_INFINITY) - (a ?? Number.NEGATIVE_INFINITY);

/** Best first: pass rate, then mean score, then cost (cheaper first); ties keep the run's order. */
export function rankVariants(variants: readonly VariantSummary[]): VariantSummary[] {
  return [...variants].sort((a, b) => descending(a.passRate, b.passRate) || descending(a.meanScore, b.meanScore) || a.costUsd - b.costUsd);
}

/** The winner: the best-ranked variant that completed a cell; null before any did. */
export function bestVariant(ranked: readonly VariantSummary[]): VariantSummary | null {
  return ranked.find((variant) => variant.completed > 0) ?? null;
}
