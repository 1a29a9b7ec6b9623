import { type Expression, type ExpressionBuilder, type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { costUnitsToUsd } from './cost-units';
import type { Database } from './schema';
import type { UsageTotals } from './ledger-types';

/** How the lines of a usage series are split. */
export type UsageSeriesGroupBy = 'model' | 'caller' | 'team';
export const USAGE_SERIES_GROUP_BY: readonly UsageSeriesGroupBy[] = ['model', 'caller', 'team'];

/** The most buckets one series may have: what a chart can show, and a bound on the rows a query returns per group. */
export const MAX_SERIES_BUCKETS = 1000;

export interface UsageSeriesQuery {
  /** Inclusive. */
  readonly since: Date;
  /** Exclusive; after `since`. */
  readonly until: Date;
  /** Bucket width: buckets start at multiples of it since the Unix epoch. */
  readonly bucketMs: number;
  readonly groupBy: UsageSeriesGroupBy;
  /** Only this caller's generations (a member's own). */
  readonly caller?: string;
  /** False: leave the latency percentiles null and skip their query (the costlier of the two). */
  readonly latency?: boolean;
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
  /** The model id, caller, or team (`""` for none). */
  readonly group: string;
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
  /** Sorted by group. */
  readonly lines: readonly UsageSeriesLine[];
}

// Without parameters: PostgreSQL matches a window's partition to the selected expression by its text.
const GROUP_EXPRESSIONS: Readonly<Record<UsageSeriesGroupBy, RawBuilder<string>>> = {
  model: sql<string>`model_id`,
  caller: sql<string>`caller`,
  team: sql<string>`coalesce(team, '')`,
};

const IN_PROGRESS = 'in_progress';

/** How many buckets of width `bucketMs` overlap [since, until), without listing them. */
export function bucketCount(since: Date, until: Date, bucketMs: number): number {
  return Math.ceil(until.getTime() / bucketMs) - Math.floor(since.getTime() / bucketMs);
}

/** The start (epoch ms) of every bucket of width `bucketMs` that overlaps [since, until). */
export function bucketStarts(since: Date, until: Date, bucketMs: number): number[] {
  const count = bucketCount(since, until, bucketMs);
  if (count > MAX_SERIES_BUCKETS) throw new RangeError(`a series has at most ${MAX_SERIES_BUCKETS} buckets, not ${count}`);
  const first = Math.floor(since.getTime() / bucketMs);
  const last = first + count - 1;
  const starts: number[] = [];
  for (let bucket = first; bucket <= last; bucket++) starts.push(bucket * bucketMs);
  return starts;
}

/**
 * Requests, failures, tokens, cost and latency percentiles of the finished generations in
 * [since, until), per time bucket and group, in both stores: one grouped sum, then (unless
 * `latency` is false) one window over the succeeded rows that keeps only the two ranked rows of
 * each (bucket, group). The database returns at most a few rows per (bucket, group), however many
 * generations there are; nothing is read row by row here.
 */
export async function queryUsageSeries(db: Kysely<Database>, query: UsageSeriesQuery): Promise<UsageSeries> {
  const { since, until, bucketMs, groupBy } = query;
  if (!Number.isSafeInteger(bucketMs) || bucketMs < 1) throw new RangeError(`a bucket is a whole number of ms, not ${bucketMs}`);
  if (!(since.getTime() < until.getTime())) throw new RangeError('a series needs since before until');
  const buckets = bucketStarts(since, until, bucketMs);
  const group = GROUP_EXPRESSIONS[groupBy];
  // Integer division in both stores (created_at is an integer of epoch ms): the bucket's number.
  const bucket = sql<number>`created_at / ${sql.lit(bucketMs)}`;
  const inRange = (eb: ExpressionBuilder<Database, 'generations'>, status: Expression<SqlBool>) => {
    const conditions = [status, eb('created_at', '>=', since.getTime()), eb('created_at', '<', until.getTime())];
    if (query.caller !== undefined) conditions.push(eb('caller', '=', query.caller));
    return eb.and(conditions);
  };

  const sums = await db
    .selectFrom('generations')
    .select([
      bucket.as('bucket'),
      group.as('group_key'),
      sql<number | string>`count(*)`.as('requests'),
      sql<number | string>`sum(case when status = 'succeeded' then 1 else 0 end)`.as('succeeded'),
      sql<number | string>`sum(case when status = 'failed' then 1 else 0 end)`.as('failed'),
      sql<number | string>`sum(input_tokens)`.as('input_tokens'),
      sql<number | string>`sum(output_tokens)`.as('output_tokens'),
      // As text: an exact integer of any size in both stores.
      sql<string>`cast(sum(cost_units) as text)`.as('cost_units'),
    ])
    .where((eb) => inRange(eb, eb('status', '!=', IN_PROGRESS)))
    .groupBy([bucket, group])
    .execute();

  const percentiles = new Map<string, { p50: number | null; p95: number | null }>();
  if (query.latency !== false) {
    // Nearest rank: the ceil(p * n)-th smallest, in integer arithmetic ((n + 1) / 2 and (95 n + 99) / 100).
    // Both windows share their partition and order, so the rows are sorted once.
    const window = sql`partition by ${bucket}, ${group} order by latency_ms`;
    const ranked = db
      .selectFrom('generations')
      .select([
        bucket.as('bucket'),
        group.as('group_key'),
        'latency_ms',
        sql<number | string>`row_number() over (${window})`.as('latency_rank'),
        sql<number | string>`count(*) over (${window} rows between unbounded preceding and unbounded following)`.as('succeeded_count'),
      ])
      .where((eb) => inRange(eb, eb('status', '=', 'succeeded')));
    const p50Rank = sql`(succeeded_count + 1) / 2`;
    const p95Rank = sql`(95 * succeeded_count + 99) / 100`;
    const rows = await db
      .selectFrom(ranked.as('ranked_latencies'))
      .select([
        'bucket',
        'group_key',
        sql<number | string | null>`max(case when latency_rank = ${p50Rank} then latency_ms end)`.as('p50'),
        sql<number | string | null>`max(case when latency_rank = ${p95Rank} then latency_ms end)`.as('p95'),
      ])
      .where(sql<SqlBool>`latency_rank = ${p50Rank} or latency_rank = ${p95Rank}`)
      .groupBy(['bucket', 'group_key'])
      .execute();
    for (const row of rows) {
      percentiles.set(`${Number(row.bucket)} ${row.group_key}`, {
        p50: row.p50 === null ? null : Number(row.p50),
        p95: row.p95 === null ? null : Number(row.p95),
      });
    }
  }

  const lines = new Map<string, UsagePoint[]>();
  for (const sum of sums) {
    const key = String(sum.group_key);
    const inputTokens = Number(sum.input_tokens);
    const outputTokens = Number(sum.output_tokens);
    const costUnits = BigInt(sum.cost_units);
    const latency = percentiles.get(`${Number(sum.bucket)} ${key}`);
    const point: UsagePoint = {
      start: new Date(Number(sum.bucket) * bucketMs),
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
  return {
    groupBy,
    since,
    until,
    bucketMs,
    buckets: buckets.map((start) => new Date(start)),
    // Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order disagree on text.
    lines: [...lines.entries()]
      .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
      .map(([key, points]) => ({ group: key, points: points.sort((left, right) => left.start.getTime() - right.start.getTime()) })),
  };
}
