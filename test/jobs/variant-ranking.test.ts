import { bestVariant, rankVariants } from '../../src/jobs/variant-ranking';
import type { VariantSummary } from '../../src/storage/evaluation-types';

const variant = (modelId: string, passRate: number | null, meanScore: number | null, costUsd: number, completed = 10): VariantSummary => ({
  prompt: { name: 'p', version: 1 },
  modelId,
  cases: 10,
  completed,
  failed: 0,
  passed: passRate === null ? 0 : Math.round(passRate * completed),
  passRate,
  meanScore,
  scores: {},
  meanLatencyMs: null,
  p95LatencyMs: null,
  totalTokens: 0,
  costUsd,
  costPerPassUsd: null,
});

describe('rankVariants', () => {
  it('ranks by pass rate, then mean score, then cost (cheaper first)', () => {
    const ranked = rankVariants([
      variant('cheap-weak', 0.5, 0.9, 0.01),
      variant('dear-strong', 0.9, 0.5, 1),
      variant('cheap-strong', 0.9, 0.5, 0.1),
      variant('best-score', 0.9, 0.6, 5),
    ]);
    expect(ranked.map((entry) => entry.modelId)).toEqual(['best-score', 'cheap-strong', 'dear-strong', 'cheap-weak']);
  });

  it('treats means that differ only in their last bits as equal, so the cost decides', () => {
    // 0.1 + 0.2 summed in another order: the same mean to a person, not to ===.
    const ranked = rankVariants([variant('dear', 0, 0.30000000000000004, 2), variant('cheap', 0, 0.3, 1)]);
    expect(ranked.map((entry) => entry.modelId)).toEqual(['cheap', 'dear']);
  });

  it('puts variants without a completed cell last, and names the best variant that completed one', () => {
    const ranked = rankVariants([variant('nothing-yet', null, null, 0, 0), variant('some', 0, 0.1, 3)]);
    expect(ranked.map((entry) => entry.modelId)).toEqual(['some', 'nothing-yet']);
    expect(bestVariant(ranked)?.modelId).toBe('some');
    expect(bestVariant([variant('nothing-yet', null, null, 0, 0)])).toBeNull();
  });
});
