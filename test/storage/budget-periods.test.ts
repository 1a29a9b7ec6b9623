import { BUDGET_PERIODS, isBudgetPeriod, periodOf, periodStartMs } from '../../src/storage/budget-periods';

/* Budget periods are UTC calendar periods; weeks start on Monday 00:00 UTC. */

const utc = (text: string): Date => new Date(text);
const bounds = (period: Parameters<typeof periodOf>[0], at: string) => {
  const { start, resetsAt } = periodOf(period, utc(at));
  return { start: start?.toISOString() ?? null, resetsAt: resetsAt?.toISOString() ?? null };
};

describe('budget periods', () => {
  it('a day runs from UTC midnight to the next, midnight itself starting the new day', () => {
    expect(bounds('day', '2025-03-10T12:34:56.789Z')).toEqual({ start: '2025-03-10T00:00:00.000Z', resetsAt: '2025-03-11T00:00:00.000Z' });
    expect(bounds('day', '2025-03-10T00:00:00.000Z')).toEqual({ start: '2025-03-10T00:00:00.000Z', resetsAt: '2025-03-11T00:00:00.000Z' });
    expect(bounds('day', '2025-03-10T23:59:59.999Z')).toEqual({ start: '2025-03-10T00:00:00.000Z', resetsAt: '2025-03-11T00:00:00.000Z' });
    expect(bounds('day', '2024-12-31T23:59:59.999Z')).toEqual({ start: '2024-12-31T00:00:00.000Z', resetsAt: '2025-01-01T00:00:00.000Z' });
    expect(bounds('day', '2024-02-28T08:00:00.000Z')).toEqual({ start: '2024-02-28T00:00:00.000Z', resetsAt: '2024-02-29T00:00:00.000Z' });
  });

  it('ignores the local time zone: an instant late on a UTC day that is already tomorrow elsewhere', () => {
    // 2025-03-10T23:30Z is 2025-03-11 in Tokyo, and the 10th in UTC.
    expect(bounds('day', '2025-03-11T08:30:00+09:00').start).toBe('2025-03-10T00:00:00.000Z');
  });

  it('a week runs from Monday 00:00 UTC to the next Monday', () => {
    const week = { start: '2025-03-10T00:00:00.000Z', resetsAt: '2025-03-17T00:00:00.000Z' }; // Monday 10 March 2025
    expect(bounds('week', '2025-03-10T00:00:00.000Z')).toEqual(week); // Monday at midnight: its own week
    expect(bounds('week', '2025-03-12T15:00:00.000Z')).toEqual(week); // Wednesday
    expect(bounds('week', '2025-03-16T23:59:59.999Z')).toEqual(week); // Sunday, the last instant
    expect(bounds('week', '2025-03-17T00:00:00.000Z')).toEqual({ start: '2025-03-17T00:00:00.000Z', resetsAt: '2025-03-24T00:00:00.000Z' });
    expect(bounds('week', '2025-03-09T23:59:59.999Z')).toEqual({ start: '2025-03-03T00:00:00.000Z', resetsAt: '2025-03-10T00:00:00.000Z' });
  });

  it('a week may span two months and two years', () => {
    // Wednesday 1 January 2025: the week began on Monday 30 December 2024.
    expect(bounds('week', '2025-01-01T10:00:00.000Z')).toEqual({ start: '2024-12-30T00:00:00.000Z', resetsAt: '2025-01-06T00:00:00.000Z' });
    // Saturday 1 March 2025: the week began on Monday 24 February.
    expect(bounds('week', '2025-03-01T10:00:00.000Z')).toEqual({ start: '2025-02-24T00:00:00.000Z', resetsAt: '2025-03-03T00:00:00.000Z' });
    // Thursday 1 January 1970 (epoch 0): the week began on Monday 29 December 1969.
    expect(bounds('week', '1970-01-01T00:00:00.000Z')).toEqual({ start: '1969-12-29T00:00:00.000Z', resetsAt: '1970-01-05T00:00:00.000Z' });
  });

  it('a month runs from the first at 00:00 UTC to the next first, whatever its length', () => {
    expect(bounds('month', '2025-03-10T12:00:00.000Z')).toEqual({
      start: '2025-03-01T00:00:00.000Z',
      resetsAt: '2025-04-01T00:00:00.000Z',
    });
    expect(bounds('month', '2025-03-01T00:00:00.000Z')).toEqual({
      start: '2025-03-01T00:00:00.000Z',
      resetsAt: '2025-04-01T00:00:00.000Z',
    });
    expect(bounds('month', '2025-03-31T23:59:59.999Z')).toEqual({
      start: '2025-03-01T00:00:00.000Z',
      resetsAt: '2025-04-01T00:00:00.000Z',
    });
    expect(bounds('month', '2025-04-30T23:59:59.999Z')).toEqual({
      start: '2025-04-01T00:00:00.000Z',
      resetsAt: '2025-05-01T00:00:00.000Z',
    });
    expect(bounds('month', '2024-12-31T23:59:59.999Z')).toEqual({
      start: '2024-12-01T00:00:00.000Z',
      resetsAt: '2025-01-01T00:00:00.000Z',
    });
  });

  it('February has 29 days in leap years (2024, 2000) and 28 otherwise (2025, 1900)', () => {
    expect(bounds('month', '2024-02-29T12:00:00.000Z')).toEqual({
      start: '2024-02-01T00:00:00.000Z',
      resetsAt: '2024-03-01T00:00:00.000Z',
    });
    expect(bounds('day', '2024-02-29T12:00:00.000Z')).toEqual({ start: '2024-02-29T00:00:00.000Z', resetsAt: '2024-03-01T00:00:00.000Z' });
    expect(bounds('month', '2000-02-29T00:00:00.000Z').start).toBe('2000-02-01T00:00:00.000Z');
    expect(bounds('month', '2025-02-28T23:59:59.999Z')).toEqual({
      start: '2025-02-01T00:00:00.000Z',
      resetsAt: '2025-03-01T00:00:00.000Z',
    });
    expect(bounds('month', '2025-03-01T00:00:00.000Z').start).toBe('2025-03-01T00:00:00.000Z');
    expect(bounds('day', '1900-02-28T12:00:00.000Z').resetsAt).toBe('1900-03-01T00:00:00.000Z');
  });

  it('total has neither start nor reset, and its counter key is 0', () => {
    expect(bounds('total', '2025-03-10T12:00:00.000Z')).toEqual({ start: null, resetsAt: null });
    expect(periodStartMs('total', utc('2025-03-10T12:00:00.000Z'))).toBe(0);
    expect(periodStartMs('day', utc('2025-03-10T12:00:00.000Z'))).toBe(Date.UTC(2025, 2, 10));
  });

  it('every instant lies in its period, and the next period starts where it ends', () => {
    const periods = BUDGET_PERIODS.filter((period) => period !== 'total');
    for (let time = Date.UTC(2023, 11, 20); time < Date.UTC(2024, 2, 10); time += 3_600_000 * 7 + 123) {
      for (const period of periods) {
        const { start, resetsAt } = periodOf(period, new Date(time));
        expect(start!.getTime()).toBeLessThanOrEqual(time);
        expect(resetsAt!.getTime()).toBeGreaterThan(time);
        expect(periodOf(period, resetsAt!).start).toEqual(resetsAt);
        expect(periodOf(period, new Date(resetsAt!.getTime() - 1)).start).toEqual(start);
      }
    }
  });

  it('refuses an invalid date and knows its periods', () => {
    expect(() => periodOf('day', new Date(Number.NaN))).toThrow(RangeError);
    expect(() => periodOf('fortnight' as never, new Date())).toThrow(TypeError);
    expect(isBudgetPeriod('week')).toBe(true);
    expect(isBudgetPeriod('year')).toBe(false);
    expect(isBudgetPeriod(undefined)).toBe(false);
  });
});
