import { ledgerUnavailable, validationError } from '../errors/api-error';
import type { Caller } from '../pipeline/caller';
import type { LedgerRepository } from '../storage/ledger-repository';
import { bucketCount, MAX_SERIES_BUCKETS, type UsageSeries, type UsageSeriesGroupBy } from '../storage/usage-series';
import { callLedger } from './ledger-call';
import { visibleCaller } from './ledger.service';

export interface UsageSeriesRequest {
  readonly groupBy: UsageSeriesGroupBy;
  /** Inclusive; by default `until` minus 24 hours. */
  readonly since?: Date | null;
  /** Exclusive; by default now. */
  readonly until?: Date | null;
  /** By default the smallest of BUCKET_LADDER_SECONDS that gives at most TARGET_BUCKETS buckets. */
  readonly bucketSeconds?: number | null;
  /** False when nobody reads the latency percentiles: their query, the costlier one, is skipped. */
  readonly latency?: boolean;
}

export const DEFAULT_SERIES_RANGE_MS = 24 * 3600_000;
/** Bucket widths chosen when none is asked for: round minutes, hours and days. */
export const BUCKET_LADDER_SECONDS = [60, 300, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 604_800] as const;
/** About as many buckets as a chart a few hundred pixels wide shows well. */
export const TARGET_BUCKETS = 120;

const INVALID = 'Invalid request parameters';

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
    const since = request.since ?? new Date(until.getTime() - DEFAULT_SERIES_RANGE_MS);
    if (!(since.getTime() < until.getTime())) throw validationError(INVALID, 'until: must be after since');
    const bucketMs = bucketWidthMs(since, until, request.bucketSeconds);
    const onlyCaller = visibleCaller(caller, undefined);
    return callLedger(
      () =>
        repository.usageSeries({
          since,
          until,
          bucketMs,
          groupBy: request.groupBy,
          latency: request.latency !== false,
          ...(onlyCaller === undefined ? {} : { caller: onlyCaller }),
        }),
      this.onError,
    );
  }
}

function bucketWidthMs(since: Date, until: Date, bucketSeconds: number | null | undefined): number {
  if (bucketSeconds === null || bucketSeconds === undefined) {
    const fitting = BUCKET_LADDER_SECONDS.find((seconds) => bucketCount(since, until, seconds * 1000) <= TARGET_BUCKETS);
    if (fitting !== undefined) return fitting * 1000;
    // Longer than the ladder covers: whole weeks.
    const weekMs = BUCKET_LADDER_SECONDS[BUCKET_LADDER_SECONDS.length - 1]! * 1000;
    return Math.ceil((until.getTime() - since.getTime()) / TARGET_BUCKETS / weekMs) * weekMs;
  }
  if (!Number.isSafeInteger(bucketSeconds) || bucketSeconds < 1) throw validationError(INVALID, 'bucket_seconds: must be 1 or more');
  const count = bucketCount(since, until, bucketSeconds * 1000);
  if (count > MAX_SERIES_BUCKETS) {
    throw validationError(
      INVALID,
      `bucket_seconds: ${bucketSeconds} s buckets split this range into ${count}; at most ${MAX_SERIES_BUCKETS} (choose wider buckets or a shorter range)`,
    );
  }
  return bucketSeconds * 1000;
}
