/** The longest wait an upstream's Retry-After is read as: anything longer is as good as "not now". */
const longestMs = 24 * 60 * 60 * 1000;

/**
 * An upstream's requested wait in ms, from `retry-after-ms` (OpenAI's) or `retry-after` (seconds or an
 * HTTP date); undefined when absent or unreadable.
 */
export function retryAfterMsOf(headers: { get(name: string): string | null } | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const milliseconds = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return Math.min(milliseconds, longestMs);
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.min(Number(value) * 1000, longestMs);
  // Only an HTTP date (it starts with the day's name): Date.parse reads almost anything as some date.
  if (!/^(mon|tue|wed|thu|fri|sat|sun)/i.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.min(Math.max(0, date - now), longestMs);
}
