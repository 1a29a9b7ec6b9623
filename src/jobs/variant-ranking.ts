import type { VariantSummary } from '../storage/evaluation-types';

/**
 * Means summed in a different order (PostgreSQL and SQLite aggregate as they like) differ in their
 * last bits: closer than this they are a tie, and the next criterion decides.
 */
const TIE = 1e-9;

/** Higher first, a variant with no value (nothing completed) last. */
function descending(a: number | null, b: number | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  return Math.abs(a - b) < TIE ? 0 : b - a;
}

/** Best first: pass rate, then mean score, then cost (cheaper first); ties keep the run's order. */
export function rankVariants(variants: readonly VariantSummary[]): VariantSummary[] {
  return [...variants].sort((a, b) => descending(a.passRate, b.passRate) || descending(a.meanScore, b.meanScore) || a.costUsd - b.costUsd);
}

/** The winner: the best-ranked variant that completed a cell; null before any did. */
export function bestVariant(ranked: readonly VariantSummary[]): VariantSummary | null {
  return ranked.find((variant) => variant.completed > 0) ?? null;
}
