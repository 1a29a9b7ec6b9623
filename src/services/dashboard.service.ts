import { ledgerUnavailable, validationError } from '../errors/api-error';
import type { Caller } from '../pipeline/caller';
import type { LedgerRepository } from '../storage/ledger-repository';
import {
  bucketCount,
  DEFAULT_SERIES_LINES,
  MAX_BUCKET_SECONDS,
  MAX_SERIES_BUCKETS,
  MAX_SERIES_LINES,
  MAX_SERIES_TIME_MS,
  MIN_SERIES_TIME_MS,
  type UsageSeries,
  type UsageSeriesGroupBy,
} from '../storage/usage-series';
import { callLedger } from './ledger-call';
import { visibleCaller } from './ledger.service';

export interface UsageSeriesRequest {
  readonly groupBy: UsageSeriesGroupBy;
  /** Inclusive; by default `until` minus 24 hours (not before 1970). */
  readonly since?: Date | null;
  /** Exclusive; by default now. */
  readonly until?: Date | null;
  /** By default the smallest of BUCKET_LADDER_SECONDS that gives at most TARGET_BUCKETS buckets. */
  readonly bucketSeconds?: number | null;
  /** At most this many lines (the rest folded into one); by default DEFAULT_SERIES_LINES. */
  readonly maxLines?: number | null;
  /** False when nobody reads the latency percentiles: their query, the costlier one, is skipped. */
  readonly latency?: boolean;
}

export const DEFAULT_SERIES_RANGE_MS = 24 * 3600_000;
/** Bucket widths chosen when none is asked for: round minutes, hours and days, and a week (from Monday). */
export const BUCKET_LADDER_SECONDS = [60, 300, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 604_800] as const;
/** About as many buckets as a chart a few hundred pixels wide shows well. */
export const TARGET_BUCKETS = 120;

const INVALID = 'Invalid request parameters';
const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * What the dashboard (GET /dashboard) reads beyond the existing queries: the ledger's usage as time
 * series. Roles as for `usage`: admins see every caller's generations, a member only their own.
 */
export class DashboardService {
  constructor(
    /** Undefined with LEDGER=off: nothing was recorded. */
    private readonly repository: LedgerRepository | undefined,
    /** Told about database failures; callers see ledger_unavailable. */
    private readonly onError: (error: unknown) => void,
    private readonly now: () => Date = () => new Date(),
  ) {}

  usageSeries(caller: Caller, request: UsageSeriesRequest): Promise<UsageSeries> {
    const { repository } = this;
    if (!repository) throw ledgerUnavailable('the ledger is off (LEDGER=off): nothing is recorded');
    const until = request.until ?? this.now();
    if (until.getTime() > MAX_SERIES_TIME_MS) throw validationError(INVALID, `until: must be ${iso(MAX_SERIES_TIME_MS)} or earlier`);
    const since = request.since ?? new Date(Math.max(MIN_SERIES_TIME_MS, until.getTime() - DEFAULT_SERIES_RANGE_MS));
    if (since.getTime() < MIN_SERIES_TIME_MS) {
      throw validationError(INVALID, `since: must be ${iso(MIN_SERIES_TIME_MS)} or later (the ledger holds nothing older)`);
    }
    if (!(since.getTime() < until.getTime())) throw validationError(INVALID, 'until: must be after since');
    const bucketMs = bucketWidthMs(since, until, request.bucketSeconds);
    const maxLines = request.maxLines ?? DEFAULT_SERIES_LINES;
    if (!Number.isSafeInteger(maxLines) || maxLines < 1 || maxLines > MAX_SERIES_LINES) {
      throw validationError(INVALID, `max_lines: must be an integer from 1 to ${MAX_SERIES_LINES}`);
    }
    const onlyCaller = visibleCaller(caller, undefined);
    return callLedger(
      () =>
        repository.usageSeries({
          since,
          until,
          bucketMs,
          groupBy: request.groupBy,
          maxLines,
          latency: request.latency !== false,
          ...(onlyCaller === undefined ? {} : { caller: onlyCaller }),
        }),
      this.onError,
    );
  }
}

/**
 * The width asked for, checked; or the narrowest of the ladder that gives at most TARGET_BUCKETS
 * buckets, or beyond the ladder the fewest whole weeks that do. Within [MIN_SERIES_TIME_MS,
 * MAX_SERIES_TIME_MS] that is at most 3,521 weeks (the whole span over 119 buckets, one more
 * reaching outside it: 2,129,500,800 s), inside GraphQL's Int (2,147,483,647).
 */
export function bucketWidthMs(since: Date, until: Date, bucketSeconds: number | null | undefined): number {
  if (bucketSeconds === null || bucketSeconds === undefined) {
    const fitting = BUCKET_LADDER_SECONDS.find((seconds) => bucketCount(since, until, seconds * 1000) <= TARGET_BUCKETS);
    if (fitting !== undefined) return fitting * 1000;
    const weekMs = BUCKET_LADDER_SECONDS[BUCKET_LADDER_SECONDS.length - 1]! * 1000;
    let weeks = Math.ceil((until.getTime() - since.getTime()) / TARGET_BUCKETS / weekMs);
    // Off the Monday grid the range may touch one bucket more: one week wider then.
    while (bucketCount(since, until, weeks * weekMs) > TARGET_BUCKETS) weeks += 1;
    if (weeks * (weekMs / 1000) > MAX_BUCKET_SECONDS) {
      throw validationError(INVALID, 'since: the range is too long to chart (choose a later since or an earlier until)');
    }
    return weeks * weekMs;
  }
  if (!Number.isSafeInteger(bucketSeconds) || bucketSeconds < 1 || bucketSeconds > MAX_BUCKET_SECONDS) {
    throw validationError(INVALID, `bucket_seconds: must be an integer from 1 to ${MAX_BUCKET_SECONDS}`);
  }
  const count = bucketCount(since, until, bucketSeconds * 1000);
  if (count > MAX_SERIES_BUCKETS) {
    throw validationError(
      INVALID,
      `bucket_seconds: ${bucketSeconds} s buckets split this range into ${count}; at most ${MAX_SERIES_BUCKETS} (choose wider buckets or a shorter range)`,
    );
  }
  return bucketSeconds * 1000;
}
