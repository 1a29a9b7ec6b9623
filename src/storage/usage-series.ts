import { type Expression, type ExpressionBuilder, type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { costUnitsToUsd } from './cost-units';
import type { UsageTotals } from './ledger-types';
import type { Database } from './schema';

/** How the lines of a usage series are split. */
export type UsageSeriesGroupBy = 'model' | 'caller' | 'team';
export const USAGE_SERIES_GROUP_BY: readonly UsageSeriesGroupBy[] = ['model', 'caller', 'team'];

/** The most buckets one series may have: what a chart can show, and a bound on the rows a query returns per group. */
export const MAX_SERIES_BUCKETS = 1000;

/** Lines a series has unless asked for another number, and the most it may be asked for. */
export const DEFAULT_SERIES_LINES = 20;
export const MAX_SERIES_LINES = 100;
/** The group of the line that sums the groups beyond `maxLines` (told apart from a real group by its `foldedGroups`). */
export const OTHER_GROUP = '(other)';

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05T00:00:00Z, the first Monday after the epoch: the platform's weeks (budgets) start on Mondays, UTC. */
export const FIRST_MONDAY_MS = 4 * DAY_MS;

/**
 * The times a series may reach: nothing in the ledger is older than the epoch (its times are
 * epoch ms), and ISO 8601 date-times in GraphQL have four-digit years. Within these, every width
 * derived for a range (src/services/dashboard.service.ts) fits a 32-bit number of seconds.
 */
export const MIN_SERIES_TIME_MS = 0;
export const MAX_SERIES_TIME_MS = Date.UTC(10_000, 0, 1);
/** GraphQL's Int: the widest bucket, in seconds. */
export const MAX_BUCKET_SECONDS = 2_147_483_647;

export interface UsageSeriesQuery {
  /** Inclusive; not before MIN_SERIES_TIME_MS. */
  readonly since: Date;
  /** Exclusive; after `since`, not after MAX_SERIES_TIME_MS. */
  readonly until: Date;
  /** Bucket width: buckets start at bucketOrigin(bucketMs) plus multiples of it. */
  readonly bucketMs: number;
  readonly groupBy: UsageSeriesGroupBy;
  /** Only this caller's generations (a member's own). */
  readonly caller?: string;
  /** False: leave the latency percentiles null and skip their query (the costlier of the two). */
  readonly latency?: boolean;
  /**
   * At most this many lines (1 to MAX_SERIES_LINES; DEFAULT_SERIES_LINES when absent): with more
   * groups, the `maxLines - 1` largest and one OTHER_GROUP line for the rest.
   */
  readonly maxLines?: number;
}

/** One group's figures in one bucket: the totals `usage` reports, and latency percentiles. */
export interface UsagePoint extends UsageTotals {
  /** When the bucket starts. */
  readonly start: Date;
  /** Nearest-rank percentiles of the succeeded generations' latencies; null when none succeeded. */
  readonly p50LatencyMs: number | null;
  readonly p95LatencyMs: number | null;
}

export interface UsageSeriesLine {
  /** The model id, caller, or team (`""` for none); OTHER_GROUP for the folded line. */
  readonly group: string;
  /** 0 for a group's own line; on the OTHER_GROUP line, how many groups it sums (1 or more). */
  readonly foldedGroups: number;
  /** Only the buckets where the group has generations, oldest first. */
  readonly points: readonly UsagePoint[];
}

export interface UsageSeries {
  readonly groupBy: UsageSeriesGroupBy;
  readonly since: Date;
  readonly until: Date;
  readonly bucketMs: number;
  /** The start of every bucket that overlaps [since, until), oldest first. */
  readonly buckets: readonly Date[];
  /** How many groups have generations in the range, the folded ones included. */
  readonly groups: number;
  /** Sorted by group, then the folded line (if any). */
  readonly lines: readonly UsageSeriesLine[];
}

// Without parameters: PostgreSQL matches a GROUP BY to the selected expression by its text.
const GROUP_EXPRESSIONS: Readonly<Record<UsageSeriesGroupBy, RawBuilder<string>>> = {
  model: sql<string>`model_id`,
  caller: sql<string>`caller`,
  team: sql<string>`coalesce(team, '')`,
};

const IN_PROGRESS = 'in_progress';

/**
 * Where the grid of buckets of width `bucketMs` starts: a whole number of weeks starts on Mondays
 * 00:00 UTC (FIRST_MONDAY_MS), as the platform's weeks do; any other width on the epoch (so a whole
 * number of days starts at midnight UTC).
 */
export function bucketOrigin(bucketMs: number): number {
  return bucketMs % WEEK_MS === 0 ? FIRST_MONDAY_MS : 0;
}

/** The start of the bucket of width `bucketMs` that holds `time` (epoch ms). */
export function bucketStart(time: number, bucketMs: number): number {
  const origin = bucketOrigin(bucketMs);
  return origin + Math.floor((time - origin) / bucketMs) * bucketMs;
}

/** How many buckets of width `bucketMs` overlap [since, until), without listing them. */
export function bucketCount(since: Date, until: Date, bucketMs: number): number {
  const origin = bucketOrigin(bucketMs);
  return Math.ceil((until.getTime() - origin) / bucketMs) - Math.floor((since.getTime() - origin) / bucketMs);
}

/** The start (epoch ms) of every bucket of width `bucketMs` that overlaps [since, until). */
export function bucketStarts(since: Date, until: Date, bucketMs: number): number[] {
  const count = bucketCount(since, until, bucketMs);
  if (count > MAX_SERIES_BUCKETS) throw new RangeError(`a series has at most ${MAX_SERIES_BUCKETS} buckets, not ${count}`);
  const first = bucketStart(since.getTime(), bucketMs);
  return Array.from({ length: count }, (_unused, index) => first + index * bucketMs);
}

interface GroupTotal {
  readonly group: string;
  readonly requests: number;
  readonly costUnits: bigint;
}

/** Larger first: cost, then requests, then the group in code-unit order (the same in both stores). */
function largerFirst(left: GroupTotal, right: GroupTotal): number {
  if (left.costUnits !== right.costUnits) return left.costUnits > right.costUnits ? -1 : 1;
  if (left.requests !== right.requests) return right.requests - left.requests;
  return left.group < right.group ? -1 : left.group > right.group ? 1 : 0;
}

/** A (bucket, group) pair as a map key; the folded line's group is null. */
const pointKey = (bucket: number, group: string | null): string => `${bucket} ${group === null ? '-' : `+${group}`}`;

/**
 * Requests, failures, tokens, cost and latency percentiles of the finished generations in
 * [since, until), per time bucket and group, in both stores: one grouped sum per group over the
 * range (which groups get lines of their own), one grouped sum per bucket and line, then (unless
 * `latency` is false) one window over the succeeded rows that keeps only the two ranked rows of
 * each (bucket, line). The database returns a row per group with generations in the range, and at
 * most a few rows per (bucket, line), however many generations there are; nothing is read row by
 * row here. The statements are separate: a generation that finishes between them can show in one
 * and not another (a group first seen by the second gets a line of its own, or joins the folded one).
 */
export async function queryUsageSeries(db: Kysely<Database>, query: UsageSeriesQuery): Promise<UsageSeries> {
  const { since, until, bucketMs, groupBy } = query;
  const maxLines = query.maxLines ?? DEFAULT_SERIES_LINES;
  if (!Number.isSafeInteger(bucketMs) || bucketMs < 1) throw new RangeError(`a bucket is a whole number of ms, not ${bucketMs}`);
  if (!(since.getTime() < until.getTime())) throw new RangeError('a series needs since before until');
  if (since.getTime() < MIN_SERIES_TIME_MS || until.getTime() > MAX_SERIES_TIME_MS) {
    throw new RangeError(
      `a series lies within [${new Date(MIN_SERIES_TIME_MS).toISOString()}, ${new Date(MAX_SERIES_TIME_MS).toISOString()}]`,
    );
  }
  if (!Number.isSafeInteger(maxLines) || maxLines < 1 || maxLines > MAX_SERIES_LINES) {
    throw new RangeError(`a series has 1 to ${MAX_SERIES_LINES} lines, not ${maxLines}`);
  }
  const buckets = bucketStarts(since, until, bucketMs);
  const first = buckets[0]!;
  const group = GROUP_EXPRESSIONS[groupBy];
  const inRange = (eb: ExpressionBuilder<Database, 'generations'>, status: Expression<SqlBool>) => {
    const conditions = [status, eb('created_at', '>=', since.getTime()), eb('created_at', '<', until.getTime())];
    if (query.caller !== undefined) conditions.push(eb('caller', '=', query.caller));
    return eb.and(conditions);
  };
  const finished = (eb: ExpressionBuilder<Database, 'generations'>) => inRange(eb, eb('status', '!=', IN_PROGRESS));

  // Which groups get lines of their own: all, or the maxLines - 1 largest over the range.
  const totals: GroupTotal[] = (
    await db
      .selectFrom('generations')
      .select([
        group.as('group_key'),
        sql<number | string>`count(*)`.as('requests'),
        sql<string>`cast(sum(cost_units) as text)`.as('cost_units'),
      ])
      .where(finished)
      .groupBy(group)
      .execute()
  ).map((row) => ({ group: String(row.group_key), requests: Number(row.requests), costUnits: BigInt(row.cost_units) }));
  const fold = totals.length > maxLines;
  const kept = fold ? totals.sort(largerFirst).slice(0, maxLines - 1) : totals;
  // Null for the folded groups (no group is null: model and caller never are, and a missing team is "").
  const lineKey: RawBuilder<string | null> = !fold
    ? group
    : kept.length === 0
      ? sql<string | null>`cast(null as text)`
      : sql<string | null>`case when ${group} in (${sql.join(kept.map((total) => total.group))}) then ${group} end`;
  // The bucket's index from the first: created_at is at or after it, so the integer division (an
  // integer of epoch ms by an integer, in both stores) never meets a negative numerator.
  const bucket = sql<number>`(created_at - (${sql.lit(first)})) / ${sql.lit(bucketMs)}`;
  // The rows of a line, in a subquery: its columns are grouped and partitioned by name, whatever their expressions hold.
  const lineRows = (status: (eb: ExpressionBuilder<Database, 'generations'>) => Expression<SqlBool>) =>
    db
      .selectFrom('generations')
      .select([bucket.as('bucket'), lineKey.as('line_key'), 'status', 'input_tokens', 'output_tokens', 'cost_units', 'latency_ms'])
      .where(status);

  const sums = await db
    .selectFrom(lineRows(finished).as('finished_rows'))
    .select([
      'bucket',
      'line_key',
      sql<number | string>`count(*)`.as('requests'),
      sql<number | string>`sum(case when status = 'succeeded' then 1 else 0 end)`.as('succeeded'),
      sql<number | string>`sum(case when status = 'failed' then 1 else 0 end)`.as('failed'),
      sql<number | string>`sum(input_tokens)`.as('input_tokens'),
      sql<number | string>`sum(output_tokens)`.as('output_tokens'),
      // As text: an exact integer of any size in both stores.
      sql<string>`cast(sum(cost_units) as text)`.as('cost_units'),
    ])
    .groupBy(['bucket', 'line_key'])
    .execute();

  const percentiles = new Map<string, { p50: number | null; p95: number | null }>();
  if (query.latency !== false) {
    // Nearest rank: the ceil(p * n)-th smallest, in integer arithmetic ((n + 1) / 2 and (95 n + 99) / 100).
    // Both windows share their partition and order, so the rows are sorted once. Only rows with a
    // latency: the stores sort nulls at opposite ends.
    const window = sql`partition by bucket, line_key order by latency_ms`;
    const ranked = db
      .selectFrom(
        lineRows((eb) => eb.and([inRange(eb, eb('status', '=', 'succeeded')), eb('latency_ms', 'is not', null)])).as('succeeded_rows'),
      )
      .select([
        'bucket',
        'line_key',
        'latency_ms',
        sql<number | string>`row_number() over (${window})`.as('latency_rank'),
        sql<number | string>`count(*) over (${window} rows between unbounded preceding and unbounded following)`.as('succeeded_count'),
      ]);
    const p50Rank = sql`(succeeded_count + 1) / 2`;
    const p95Rank = sql`(95 * succeeded_count + 99) / 100`;
    const rows = await db
      .selectFrom(ranked.as('ranked_latencies'))
      .select([
        'bucket',
        'line_key',
        sql<number | string | null>`max(case when latency_rank = ${p50Rank} then latency_ms end)`.as('p50'),
        sql<number | string | null>`max(case when latency_rank = ${p95Rank} then latency_ms end)`.as('p95'),
      ])
      .where(sql<SqlBool>`latency_rank = ${p50Rank} or latency_rank = ${p95Rank}`)
      .groupBy(['bucket', 'line_key'])
      .execute();
    for (const row of rows) {
      percentiles.set(pointKey(Number(row.bucket), row.line_key), {
        p50: row.p50 === null ? null : Number(row.p50),
        p95: row.p95 === null ? null : Number(row.p95),
      });
    }
  }

  const lines = new Map<string | null, UsagePoint[]>();
  for (const sum of sums) {
    const key = sum.line_key === null ? null : String(sum.line_key);
    const inputTokens = Number(sum.input_tokens);
    const outputTokens = Number(sum.output_tokens);
    const costUnits = BigInt(sum.cost_units);
    const latency = percentiles.get(pointKey(Number(sum.bucket), key));
    const point: UsagePoint = {
      start: new Date(first + Number(sum.bucket) * bucketMs),
      requests: Number(sum.requests),
      succeeded: Number(sum.succeeded),
      failed: Number(sum.failed),
      inputTokens,
      outputTokens,
      totalTokens: inputTokens + outputTokens,
      costUsd: costUnitsToUsd(costUnits),
      costUnits,
      p50LatencyMs: latency?.p50 ?? null,
      p95LatencyMs: latency?.p95 ?? null,
    };
    const points = lines.get(key);
    if (points) points.push(point);
    else lines.set(key, [point]);
  }
  const oldestFirst = (points: UsagePoint[]): UsagePoint[] => points.sort((left, right) => left.start.getTime() - right.start.getTime());
  const folded = lines.get(null);
  return {
    groupBy,
    since,
    until,
    bucketMs,
    buckets: buckets.map((start) => new Date(start)),
    groups: totals.length,
    lines: [
      // Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order disagree on text.
      ...[...lines.entries()]
        .filter((entry): entry is [string, UsagePoint[]] => entry[0] !== null)
        .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
        .map(([key, points]) => ({ group: key, foldedGroups: 0, points: oldestFirst(points) })),
      ...(folded ? [{ group: OTHER_GROUP, foldedGroups: totals.length - kept.length, points: oldestFirst(folded) }] : []),
    ],
  };
}
