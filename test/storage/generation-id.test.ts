import { newFeedbackId, newGenerationId } from '../../src/storage/generation-id';

describe('generation and feedback ids', () => {
  it('are unique and well formed across many draws from the random pool (each refill included)', () => {
    const at = new Date(Date.UTC(2026, 11, 5));
    const ids = Array.from({ length: 5000 }, () => newGenerationId(at));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^gen_[0-9a-hjkmnp-tv-z]{26}$/);
    // Same instant: the time part is shared, the random part varies over its whole alphabet.
    const randomParts = ids.map((id) => id.slice(14));
    expect(new Set(ids.map((id) => id.slice(4, 14))).size).toBe(1);
    expect(new Set(randomParts.join('')).size).toBe(32);
    expect(newFeedbackId(at)).toMatch(/^fb_[0-9a-hjkmnp-tv-z]{26}$/);
  });

  it('sort by creation time as text', () => {
    const times = [0, 1, 31, 32, 1_000, Date.UTC(2024, 0, 1), Date.UTC(2026, 11, 5, 10, 0, 0, 1)];
    const ids = times.map((time) => newGenerationId(new Date(time)));
    expect([...ids].sort()).toEqual(ids);
    expect(() => newGenerationId(new Date(-1))).toThrow(RangeError);
  });
});
