/** Printing for the gateway bench: figures, ratios against the baseline, and one line per floor. */
import { socketErrorCount, type LoadResult } from './load-generator';

export interface Floor {
  readonly name: string;
  /** What was measured, as printed. */
  readonly measured: string;
  /** The floor, as printed. */
  readonly limit: string;
  readonly pass: boolean;
}

export const formatCount = (value: number): string => Math.round(value).toLocaleString('en-US');
export const formatMs = (value: number): string => `${value.toFixed(value < 10 ? 2 : 1)} ms`;
export const formatMiB = (value: number): string => `${value.toFixed(1)} MiB`;
export const formatPercent = (ratio: number): string => `${(ratio * 100).toFixed(ratio < 0.1 ? 2 : 1)}%`;
export const formatSigned = (value: number, format: (value: number) => string): string =>
  `${value < 0 ? '-' : '+'}${format(Math.abs(value))}`;

/** Successful responses per second. */
export const successRate = (result: LoadResult): number => result.succeeded / result.seconds;

/** Refusals (HTTP 429) per second. */
export const refusalRate = (result: LoadResult): number => (result.statuses.get(429) ?? 0) / result.seconds;

/** How far `last` is from `first`, as a fraction of `first` (0.1 = 10%). */
export const relativeChange = (first: number, last: number): number => (first === 0 ? Infinity : (last - first) / first);

/**
 * Every answer that is not among `expected` (by status), every 200 whose body carries GraphQL errors,
 * and every socket error; empty when the run went as it should.
 */
export function unexpectedOutcomes(result: LoadResult, expected: readonly number[] = [200]): string[] {
  const problems: string[] = [];
  for (const [status, count] of [...result.statuses].sort(([a], [b]) => a - b)) {
    if (!expected.includes(status)) problems.push(`HTTP ${status} x${formatCount(count)}`);
  }
  if (result.errorBodies > 0) problems.push(`200 with GraphQL errors x${formatCount(result.errorBodies)}`);
  for (const [kind, count] of Object.entries(result.socketErrors)) {
    if (count > 0) problems.push(`socket ${kind} errors x${formatCount(count)}`);
  }
  return problems;
}

/** "12,345 responses in 10.0 s: 200 x12,300, 429 x45; socket read errors x1" */
export function describeOutcome(result: LoadResult): string {
  const byStatus = [...result.statuses]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status} x${formatCount(count)}`)
    .join(', ');
  const failures = [
    ...(result.errorBodies > 0 ? [`200 with GraphQL errors x${formatCount(result.errorBodies)}`] : []),
    ...(socketErrorCount(result.socketErrors) > 0
      ? Object.entries(result.socketErrors)
          .filter(([, count]) => count > 0)
          .map(([kind, count]) => `socket ${kind} errors x${formatCount(count)}`)
      : []),
  ];
  return `${formatCount(result.responses)} responses in ${result.seconds.toFixed(1)} s: ${byStatus || 'none'}${
    failures.length > 0 ? `; ${failures.join(', ')}` : ''
  }`;
}

export function heading(title: string): void {
  console.log(`\n== ${title}`);
}

/** Prints `label` padded, then the text: keeps the figures in one column. */
export function line(label: string, text: string): void {
  console.log(`  ${label.padEnd(34)} ${text}`);
}

export function printFloors(floors: readonly Floor[]): void {
  heading('Floors');
  const width = Math.max(...floors.map((floor) => floor.name.length));
  for (const floor of floors) {
    console.log(`  ${floor.pass ? 'PASS' : 'FAIL'}  ${floor.name.padEnd(width)}  ${floor.measured}  (floor: ${floor.limit})`);
  }
  const failed = floors.filter((floor) => !floor.pass).length;
  console.log(failed === 0 ? `\nall ${floors.length} floors pass` : `\n${failed} of ${floors.length} floors FAIL`);
}
