/**
 * usage_series (issue 17, what GET /dashboard charts): requests, failures, tokens, cost and p50/p95
 * latency per time bucket and per model, caller or team, exactly, on the embedded SQLite ledger and a
 * real PostgreSQL. Rows at chosen times and latencies are written through the storage layer before the
 * gateway opens the ledger (the gateway's clock cannot be set from outside); then real traffic through
 * the gateway in front of the fake upstream is checked against the ledger's own usage and list.
 * Buckets a whole number of weeks wide start on Mondays (as budgets' weeks do), many groups fold into
 * one "(other)" line beyond max_lines, and ranges and widths stay within what GraphQL can carry: each
 * checked against a plain reference computed here from the seeded rows.
 */
import { bucketWidthMs } from '../../src/services/dashboard.service';
import type { GenerationStatus } from '../../src/storage/ledger-types';
import { bucketCount, MAX_BUCKET_SECONDS, MAX_SERIES_TIME_MS } from '../../src/storage/usage-series';
import { UsageSeriesDocument, type UsageSeriesQuery, type UsageSeriesQueryVariables } from '../generated/graphql';
import { openBrowser } from '../support/chromium';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import {
  ADMIN_KEY,
  bearer,
  CHAT_MODEL,
  COMPLETION_MODEL,
  FILE_KEYS,
  type LedgerSetup,
  LEDGER_MODELS,
  ledgerCatalog,
  postgresLedgerSetup,
  sqliteLedgerSetup,
  writeKeysFile,
} from '../support/ledger-fixtures';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { type SeedRow as Row, seedFinished as seed } from './seed-ledger';
import { waitForDashboardLoad } from '../support/dashboard-page';

const { alice, bob, carol } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);

const HOUR = 3_600_000;
const MINUTE = 60_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
/** A Monday, on the hour: the seeded rows fall in its hours 10 and 12. */
const T0 = Date.UTC(2025, 0, 6, 10, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString();

const chat = (
  minute: number,
  status: GenerationStatus,
  latencyMs: number,
  inputTokens: number,
  outputTokens: number,
  costUsd: number,
): Row => ({
  createdAt: T0 + minute * MINUTE,
  caller: 'alice',
  team: 'red',
  modelId: CHAT_MODEL,
  status,
  latencyMs,
  inputTokens,
  outputTokens,
  costUsd,
});

const SEEDED: readonly Row[] = [
  // Hour 10: alice (team red) on the chat model, one failure among them; bob (no team) once on the completion model.
  chat(0, 'succeeded', 40, 10, 5, 0.0001),
  chat(10, 'succeeded', 10, 10, 5, 0.0001),
  chat(20, 'failed', 7, 8, 0, 0.00003),
  chat(30, 'succeeded', 30, 10, 5, 0.0001),
  chat(40, 'succeeded', 20, 10, 5, 0.0001),
  {
    createdAt: T0 + 50 * MINUTE,
    caller: 'bob',
    team: null,
    modelId: COMPLETION_MODEL,
    status: 'succeeded',
    latencyMs: 100,
    inputTokens: 20,
    outputTokens: 10,
    costUsd: 0.00002,
  },
  // Hour 12: carol (team blue) 20 times on the completion model, latencies 100, 95, ... 5 ms; then one cancelled.
  ...Array.from(
    { length: 20 },
    (_unused, index): Row => ({
      createdAt: T0 + 2 * HOUR + index * 2 * MINUTE,
      caller: 'carol',
      team: 'blue',
      modelId: COMPLETION_MODEL,
      status: 'succeeded',
      latencyMs: (20 - index) * 5,
      inputTokens: 4,
      outputTokens: 2,
      costUsd: 0.000001,
    }),
  ),
  {
    createdAt: T0 + 2 * HOUR + 45 * MINUTE,
    caller: 'carol',
    team: 'blue',
    modelId: COMPLETION_MODEL,
    status: 'cancelled',
    latencyMs: 0,
    inputTokens: 3,
    outputTokens: 0,
    costUsd: 0,
  },
  // Just outside [T0, T0 + 3 h): since is inclusive, until exclusive.
  { ...chat(0, 'succeeded', 1, 1, 1, 1), createdAt: T0 - 1 },
  { ...chat(0, 'succeeded', 1, 1, 1, 1), createdAt: T0 + 3 * HOUR },
];

/** A Monday three weeks after T0: many callers, for the folded line. */
const FOLD_T0 = T0 + 21 * DAY;
const FOLD_RANGE = { since: iso(FOLD_T0), until: iso(FOLD_T0 + 3 * HOUR), bucket_seconds: 3600 };
/** Callers of one request each... or more: `costs` in USD, one per request. */
function spender(caller: string, team: string | null, costs: readonly number[], seed: number): Row[] {
  return costs.map((costUsd, request) => ({
    createdAt: FOLD_T0 + ((seed * 37 + request * 53) % 180) * MINUTE + seed,
    caller,
    team,
    modelId: (seed + request) % 2 === 0 ? CHAT_MODEL : COMPLETION_MODEL,
    status: request === 1 && seed % 4 === 0 ? 'failed' : request === 2 && seed % 5 === 0 ? 'cancelled' : 'succeeded',
    latencyMs: ((seed * 37 + request * 11) % 200) + 1,
    inputTokens: 10 + seed + request,
    outputTokens: seed % 7,
    costUsd,
  }));
}
const FOLDING: readonly Row[] = [
  // The largest by cost; then two of equal cost, the one with more requests first; then a real caller
  // named "(other)" with that cost again in one request; then two equal in everything but their names.
  ...spender('whale', 'ocean', [0.01, 0.01], 101),
  ...spender('twin-a', 'pair', [0.0025, 0.0025, 0.0025, 0.0025], 102),
  ...spender('twin-b', 'pair', [0.005, 0.005], 103),
  ...spender('(other)', null, [0.01], 104),
  ...spender('tie-y', 'ties', [0.001], 105),
  ...spender('tie-x', 'ties', [0.001], 106),
  // Twenty small callers in six teams.
  ...Array.from({ length: 20 }, (_unused, index) =>
    spender(`c${String(index + 1).padStart(2, '0')}`, `team-${index % 6}`, Array(1 + (index % 3)).fill((index + 1) * 0.00001), index + 1),
  ).flat(),
];
const FOLDING_CALLERS = 26;

/** Around the first Monday after the epoch: rows before it belong to the week that started on 1969-12-29. */
const EARLY: readonly Row[] = [Date.UTC(1970, 0, 2), Date.UTC(1970, 0, 5) - 1, Date.UTC(1970, 0, 5)].map((createdAt, index) => ({
  createdAt,
  caller: 'early',
  team: null,
  modelId: CHAT_MODEL,
  status: 'succeeded',
  latencyMs: 10 * (index + 1),
  inputTokens: 1,
  outputTokens: 1,
  costUsd: 0.000001,
}));
/** Monday 2025-01-20 00:00 UTC; the epoch's grid of weeks has a bucket start on Thursday 2025-01-16 00:00. */
const WEEK_EDGE = Date.UTC(2025, 0, 20);
/** Wednesday's last millisecond, Thursday's first, Sunday's last (the three in the week from Monday 01-13), Monday 01-20's first. */
const EDGES: readonly Row[] = [WEEK_EDGE - 4 * DAY - 1, WEEK_EDGE - 4 * DAY, WEEK_EDGE - 1, WEEK_EDGE].map((createdAt) => ({
  createdAt,
  caller: 'edge',
  team: null,
  modelId: COMPLETION_MODEL,
  status: 'succeeded',
  latencyMs: 5,
  inputTokens: 1,
  outputTokens: 1,
  costUsd: 0.000001,
}));
const ALL_ROWS: readonly Row[] = [...SEEDED, ...FOLDING, ...EARLY, ...EDGES];

type Series = UsageSeriesQuery['usage_series'];
type Point = Series['series'][number]['points'][number];

const point = (start: number, figures: Omit<Point, 'start' | 'total_tokens'>): Point => ({
  start: iso(start),
  ...figures,
  total_tokens: figures.input_tokens + figures.output_tokens,
});

/** Figures compared exactly, money to a tenth of a nano-dollar (the ledger keeps 1e-10 USD). */
function expectPoints(actual: readonly Point[], expected: readonly Point[]): void {
  expect(actual.map(({ cost_usd: _cost, ...rest }) => rest)).toEqual(expected.map(({ cost_usd: _cost, ...rest }) => rest));
  for (const [index, value] of actual.entries()) expect(Math.abs(value.cost_usd - expected[index]!.cost_usd)).toBeLessThan(1e-10);
}

/** Every field of usage_series, max_lines included (the generated document predates it). */
const FULL_SERIES = `query ($since: DateTimeISO, $until: DateTimeISO, $bucket_seconds: Int, $group_by: UsageSeriesGroupBy, $max_lines: Int) {
  usage_series(since: $since, until: $until, bucket_seconds: $bucket_seconds, group_by: $group_by, max_lines: $max_lines) {
    group_by since until bucket_seconds buckets groups
    series { group folded_groups points {
      start requests succeeded failed input_tokens output_tokens total_tokens cost_usd p50_latency_ms p95_latency_ms } }
  }
}`;
interface FullSeries extends Omit<Series, 'series'> {
  readonly groups: number;
  readonly series: ReadonlyArray<{ group: string; folded_groups: number; points: Point[] }>;
}
interface FullVariables {
  since?: string;
  until?: string;
  bucket_seconds?: number;
  group_by?: 'model' | 'caller' | 'team';
  max_lines?: number;
}

/** The first Monday after the epoch: the grid of buckets a whole number of weeks wide. */
const FIRST_MONDAY = Date.UTC(1970, 0, 5);
const isMonday = (start: string): boolean => new Date(start).getUTCDay() === 1 && start.endsWith('T00:00:00.000Z');

/**
 * What usage_series should answer for `rows`, computed plainly: filter, group, rank the groups
 * (cost, then requests, then name), fold those beyond max_lines - 1, bucket on the epoch (or on
 * Mondays for whole weeks), sum, and rank the succeeded latencies (nearest rank).
 */
function reference(rows: readonly Row[], variables: Required<Omit<FullVariables, 'max_lines'>> & { max_lines?: number }) {
  const since = Date.parse(variables.since);
  const until = Date.parse(variables.until);
  const width = variables.bucket_seconds * 1000;
  const origin = width % WEEK === 0 ? FIRST_MONDAY : 0;
  const maxLines = variables.max_lines ?? 20;
  const groupOf = (row: Row): string =>
    variables.group_by === 'model' ? row.modelId : variables.group_by === 'caller' ? row.caller : (row.team ?? '');
  const inRange = rows.filter((row) => row.createdAt >= since && row.createdAt < until);
  const totals = new Map<string, { units: number; requests: number }>();
  for (const row of inRange) {
    const total = totals.get(groupOf(row)) ?? { units: 0, requests: 0 };
    totals.set(groupOf(row), { units: total.units + Math.round(row.costUsd * 1e10), requests: total.requests + 1 });
  }
  const ranked = [...totals.entries()]
    .sort(([leftGroup, left], [rightGroup, right]) =>
      left.units !== right.units
        ? right.units - left.units
        : left.requests !== right.requests
          ? right.requests - left.requests
          : leftGroup < rightGroup
            ? -1
            : 1,
    )
    .map(([group]) => group);
  const kept = new Set(ranked.length > maxLines ? ranked.slice(0, maxLines - 1) : ranked);
  const lines = new Map<string | null, Map<number, Row[]>>();
  for (const row of inRange) {
    const line = kept.has(groupOf(row)) ? groupOf(row) : null;
    const start = origin + Math.floor((row.createdAt - origin) / width) * width;
    const buckets = lines.get(line) ?? new Map<number, Row[]>();
    buckets.set(start, [...(buckets.get(start) ?? []), row]);
    lines.set(line, buckets);
  }
  const pointsOf = (buckets: Map<number, Row[]>): Point[] =>
    [...buckets.entries()]
      .sort(([left], [right]) => left - right)
      .map(([start, bucketRows]) => {
        const latencies = bucketRows
          .filter((row) => row.status === 'succeeded')
          .map((row) => row.latencyMs)
          .sort((left, right) => left - right);
        const rank = (numerator: number, denominator: number): number | null =>
          latencies.length === 0 ? null : latencies[Math.ceil((numerator * latencies.length) / denominator) - 1]!;
        const sum = (pick: (row: Row) => number): number => bucketRows.reduce((total, row) => total + pick(row), 0);
        return point(start, {
          requests: bucketRows.length,
          succeeded: bucketRows.filter((row) => row.status === 'succeeded').length,
          failed: bucketRows.filter((row) => row.status === 'failed').length,
          input_tokens: sum((row) => row.inputTokens),
          output_tokens: sum((row) => row.outputTokens),
          cost_usd: sum((row) => Math.round(row.costUsd * 1e10)) / 1e10,
          p50_latency_ms: rank(1, 2),
          p95_latency_ms: rank(95, 100),
        });
      });
  const own = [...lines.entries()]
    .filter((entry): entry is [string, Map<number, Row[]>] => entry[0] !== null)
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([group, buckets]) => ({ group, folded_groups: 0, points: pointsOf(buckets) }));
  const folded = lines.get(null);
  const firstStart = origin + Math.floor((since - origin) / width) * width;
  return {
    groups: totals.size,
    buckets: Array.from({ length: Math.ceil((until - firstStart) / width) }, (_unused, index) => iso(firstStart + index * width)),
    series: [...own, ...(folded ? [{ group: '(other)', folded_groups: totals.size - kept.size, points: pointsOf(folded) }] : [])],
  };
}

/** The answer is the reference's, point by point (money to 1e-10 USD). */
function expectReference(answer: FullSeries, expected: ReturnType<typeof reference>): void {
  expect(answer.groups).toBe(expected.groups);
  expect(answer.buckets).toEqual(expected.buckets);
  expect(answer.series.map((line) => [line.group, line.folded_groups])).toEqual(
    expected.series.map((line) => [line.group, line.folded_groups]),
  );
  for (const [index, line] of answer.series.entries()) expectPoints(line.points, expected.series[index]!.points);
}

// The seeded hours, by model (hour 10: chat 4 of 5 succeeded at 40, 10, 30, 20 ms; completion once at 100 ms;
// hour 12: completion 20 succeeded at 5..100 ms plus one cancelled).
const CHAT_HOUR_10 = point(T0, {
  requests: 5,
  succeeded: 4,
  failed: 1,
  input_tokens: 48,
  output_tokens: 20,
  cost_usd: 0.00043,
  p50_latency_ms: 20, // nearest rank: the 2nd of 10, 20, 30, 40
  p95_latency_ms: 40, // the 4th (ceil(3.8))
});
const COMPLETION_HOUR_10 = point(T0, {
  requests: 1,
  succeeded: 1,
  failed: 0,
  input_tokens: 20,
  output_tokens: 10,
  cost_usd: 0.00002,
  p50_latency_ms: 100,
  p95_latency_ms: 100,
});
const COMPLETION_HOUR_12 = point(T0 + 2 * HOUR, {
  requests: 21,
  succeeded: 20,
  failed: 0,
  input_tokens: 83,
  output_tokens: 40,
  cost_usd: 0.00002,
  p50_latency_ms: 50, // the 10th of 5, 10, ... 100
  p95_latency_ms: 95, // the 19th
});

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('usage_series on $name', (setup) => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  const series = async (variables: UsageSeriesQueryVariables, headers = asAdmin): Promise<Series> => {
    const { status, body } = await gateway.execute(UsageSeriesDocument, variables, headers);
    if (!body.data) throw new Error(`usage_series answered ${status}: ${JSON.stringify(body.errors)}`);
    return body.data.usage_series;
  };
  const refusal = async (variables: UsageSeriesQueryVariables, headers = asAdmin): Promise<unknown> => {
    const { body } = await gateway.execute(UsageSeriesDocument, variables, headers);
    expect(body.data ?? null).toBeNull();
    return body.errors?.[0]?.extensions?.code;
  };
  const THREE_HOURS = { since: iso(T0), until: iso(T0 + 3 * HOUR), bucket_seconds: 3600 };
  const fullSeries = async (variables: FullVariables, headers = asAdmin): Promise<FullSeries> => {
    const { status, body } = await gateway.graphql(FULL_SERIES, { ...variables }, headers);
    if (!body.data) throw new Error(`usage_series answered ${status}: ${JSON.stringify(body.errors)}`);
    return body.data.usage_series;
  };
  /** The refusal's code and details. */
  const fullRefusal = async (variables: FullVariables): Promise<[unknown, unknown]> => {
    const { body } = await gateway.graphql(FULL_SERIES, { ...variables }, asAdmin);
    expect(body.data ?? null).toBeNull();
    return [body.errors?.[0]?.extensions?.code, body.errors?.[0]?.extensions?.details];
  };
  /** The answer and the reference's, for the same variables (every one named). */
  const checked = async (variables: Required<Omit<FullVariables, 'max_lines'>> & { max_lines?: number }): Promise<FullSeries> => {
    const answer = await fullSeries(variables);
    expectReference(answer, reference(ALL_ROWS, variables));
    return answer;
  };

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const ledger = await setup.freshLedger();
    await seed(ledger.settings, ALL_ROWS);
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { ...ledger.env, API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([alice, bob, carol]) },
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
    await setup.tearDown();
  }, 60_000);

  it('sums every bucket per model and ranks the succeeded latencies (p50, p95 by nearest rank)', async () => {
    const answer = await series({ ...THREE_HOURS, group_by: 'model' });
    expect(answer).toMatchObject({ group_by: 'model', since: iso(T0), until: iso(T0 + 3 * HOUR), bucket_seconds: 3600 });
    expect(answer.buckets).toEqual([iso(T0), iso(T0 + HOUR), iso(T0 + 2 * HOUR)]);
    expect(answer.series.map((line) => line.group)).toEqual([CHAT_MODEL, COMPLETION_MODEL]);
    expectPoints(answer.series[0]!.points, [CHAT_HOUR_10]);
    expectPoints(answer.series[1]!.points, [COMPLETION_HOUR_10, COMPLETION_HOUR_12]);
  });

  it('splits the same rows per caller and per team (no team is the group "")', async () => {
    const byCaller = await series({ ...THREE_HOURS, group_by: 'caller' });
    expect(byCaller.series.map((line) => line.group)).toEqual(['alice', 'bob', 'carol']);
    expectPoints(byCaller.series[0]!.points, [CHAT_HOUR_10]);
    expectPoints(byCaller.series[1]!.points, [COMPLETION_HOUR_10]);
    expectPoints(byCaller.series[2]!.points, [COMPLETION_HOUR_12]);

    const byTeam = await series({ ...THREE_HOURS, group_by: 'team' });
    expect(byTeam.series.map((line) => line.group)).toEqual(['', 'blue', 'red']);
    expectPoints(byTeam.series[0]!.points, [COMPLETION_HOUR_10]);
    expectPoints(byTeam.series[1]!.points, [COMPLETION_HOUR_12]);
    expectPoints(byTeam.series[2]!.points, [CHAT_HOUR_10]);
  });

  it('counts only [since, until): buckets stay on the epoch grid and the ends may reach outside the range', async () => {
    const answer = await series({ since: iso(T0 + 25 * MINUTE), until: iso(T0 + 2 * HOUR + 30 * MINUTE), bucket_seconds: 3600 });
    expect(answer.buckets).toEqual([iso(T0), iso(T0 + HOUR), iso(T0 + 2 * HOUR)]);
    // Hour 10 from 10:25: alice's rows at 10:30 (30 ms) and 10:40 (20 ms), bob's at 10:50; hour 12 to 12:30: 15 of carol's (100..30 ms).
    expectPoints(answer.series[0]!.points, [
      point(T0, {
        requests: 2,
        succeeded: 2,
        failed: 0,
        input_tokens: 20,
        output_tokens: 10,
        cost_usd: 0.0002,
        p50_latency_ms: 20,
        p95_latency_ms: 30,
      }),
    ]);
    expectPoints(answer.series[1]!.points, [
      COMPLETION_HOUR_10,
      point(T0 + 2 * HOUR, {
        requests: 15,
        succeeded: 15,
        failed: 0,
        input_tokens: 60,
        output_tokens: 30,
        cost_usd: 0.000015,
        p50_latency_ms: 65, // the 8th of 30, 35, ... 100
        p95_latency_ms: 100, // the 15th
      }),
    ]);
  });

  it('sums half-hour buckets too, and leaves a bucket with nothing succeeded without percentiles', async () => {
    const answer = await series({ ...THREE_HOURS, bucket_seconds: 1800, group_by: 'model' });
    expect(answer.buckets).toHaveLength(6);
    const chatPoints = answer.series[0]!.points;
    expect(chatPoints.map((entry) => [entry.start, entry.requests, entry.failed, entry.p50_latency_ms, entry.p95_latency_ms])).toEqual([
      [iso(T0), 3, 1, 10, 40], // 10:00 (40 ms), 10:10 (10 ms), 10:20 failed
      [iso(T0 + 30 * MINUTE), 2, 0, 20, 30],
    ]);
    const cancelledOnly = await series({ since: iso(T0 + 2 * HOUR + 40 * MINUTE), until: iso(T0 + 3 * HOUR), bucket_seconds: 600 });
    expect(cancelledOnly.series).toEqual([
      {
        group: COMPLETION_MODEL,
        points: [
          {
            ...point(T0 + 2 * HOUR + 40 * MINUTE, {
              requests: 1,
              succeeded: 0,
              failed: 0,
              input_tokens: 3,
              output_tokens: 0,
              cost_usd: 0,
              p50_latency_ms: null,
              p95_latency_ms: null,
            }),
          },
        ],
      },
    ]);
  });

  it('ranks the latencies when an operation selects them through fragments, and sums alone when it does not', async () => {
    const { body } = await gateway.graphql(
      `query ($since: DateTimeISO, $until: DateTimeISO) {
        usage_series(since: $since, until: $until, bucket_seconds: 3600) { series { group points { ...Figures } } }
      }
      fragment Figures on UsagePoint { start requests ... on UsagePoint { p95_latency_ms } }`,
      { since: THREE_HOURS.since, until: THREE_HOURS.until },
      asAdmin,
    );
    expect(body.data.usage_series.series).toEqual([
      { group: CHAT_MODEL, points: [{ start: iso(T0), requests: 5, p95_latency_ms: 40 }] },
      {
        group: COMPLETION_MODEL,
        points: [
          { start: iso(T0), requests: 1, p95_latency_ms: 100 },
          { start: iso(T0 + 2 * HOUR), requests: 21, p95_latency_ms: 95 },
        ],
      },
    ]);
    const sumsOnly = await gateway.graphql(
      'query ($since: DateTimeISO, $until: DateTimeISO) { usage_series(since: $since, until: $until, bucket_seconds: 3600) { series { group points { requests cost_usd } } } }',
      { since: THREE_HOURS.since, until: THREE_HOURS.until },
      asAdmin,
    );
    expect(
      sumsOnly.body.data.usage_series.series.map((line: { points: Array<{ requests: number }> }) =>
        line.points.map((entry) => entry.requests),
      ),
    ).toEqual([[5], [1, 21]]);
  });

  it('shows a member only their own generations, whatever the grouping', async () => {
    const alicesModels = await series({ ...THREE_HOURS, group_by: 'model' }, bearer(alice.key));
    expect(alicesModels.series.map((line) => line.group)).toEqual([CHAT_MODEL]);
    expectPoints(alicesModels.series[0]!.points, [CHAT_HOUR_10]);
    const bobsTeams = await series({ ...THREE_HOURS, group_by: 'team' }, bearer(bob.key));
    expect(bobsTeams.series.map((line) => line.group)).toEqual(['']);
    expectPoints(bobsTeams.series[0]!.points, [COMPLETION_HOUR_10]);
    const carolIsAdmin = await series({ ...THREE_HOURS, group_by: 'caller' }, bearer(carol.key));
    expect(carolIsAdmin.series.map((line) => line.group)).toEqual(['alice', 'bob', 'carol']);
    expect(await refusal(THREE_HOURS, {})).toBe('unauthorized');
  });

  it('defaults to the last 24 hours in round buckets, and refuses ranges it cannot chart', async () => {
    const lastDay = await series({});
    const until = Date.parse(lastDay.until);
    expect(Math.abs(until - Date.now())).toBeLessThan(60_000);
    expect(Date.parse(lastDay.since)).toBe(until - 24 * HOUR);
    expect(lastDay.bucket_seconds).toBe(900);
    expect(lastDay.buckets.length).toBeGreaterThanOrEqual(96);
    expect(lastDay.buckets.length).toBeLessThanOrEqual(97);

    const seededDay = await series({ since: iso(T0), until: iso(T0 + 24 * HOUR) });
    expect([seededDay.bucket_seconds, seededDay.buckets.length]).toEqual([900, 96]);
    const midnight = T0 - 10 * HOUR;
    const month = await series({ since: iso(midnight), until: iso(midnight + 30 * 24 * HOUR) });
    expect([month.bucket_seconds, month.buckets.length]).toEqual([21_600, 120]);
    // Off the 6-hour grid the same span needs 121 such buckets: the next width up.
    const offGrid = await series({ since: iso(T0), until: iso(T0 + 30 * 24 * HOUR) });
    expect([offGrid.bucket_seconds, offGrid.buckets.length]).toEqual([43_200, 61]);
    const empty = await series({ since: iso(T0 - 24 * HOUR), until: iso(T0 - HOUR), bucket_seconds: 3600 });
    expect([empty.series, empty.buckets.length]).toEqual([[], 23]);

    expect(await refusal({ since: iso(T0), until: iso(T0 - 1) })).toBe('validation_error');
    expect(await refusal({ since: iso(T0), until: iso(T0) })).toBe('validation_error');
    expect(await refusal({ ...THREE_HOURS, bucket_seconds: 0 })).toBe('validation_error');
    // 10,800 one-second buckets: more than the 1000 a series may have.
    expect(await refusal({ ...THREE_HOURS, bucket_seconds: 1 })).toBe('validation_error');
  });

  it("starts buckets a whole number of weeks wide on Mondays 00:00 UTC, as budgets' weeks do; days at midnight", async () => {
    // On the epoch's grid (Thursdays) the week would have split Wednesday's row from Thursday's and
    // joined Sunday's with Monday's.
    const weeks = await checked({
      since: iso(WEEK_EDGE - 10 * DAY),
      until: iso(WEEK_EDGE + 2 * DAY),
      bucket_seconds: 604_800,
      group_by: 'caller',
    });
    expect(weeks.buckets).toEqual([iso(WEEK_EDGE - 2 * WEEK), iso(WEEK_EDGE - WEEK), iso(WEEK_EDGE)]);
    expect(weeks.series.map((line) => [line.group, line.points.map((entry) => [entry.start, entry.requests])])).toEqual([
      [
        'edge',
        [
          [iso(WEEK_EDGE - WEEK), 3],
          [iso(WEEK_EDGE), 1],
        ],
      ],
    ]);
    const monday = T0 - 10 * HOUR;
    await checked({ since: iso(T0 - 3 * DAY), until: iso(monday + 3 * WEEK), bucket_seconds: 604_800, group_by: 'model' });
    const fortnights = await checked({
      since: iso(T0 - 20 * DAY),
      until: iso(T0 + 40 * DAY),
      bucket_seconds: 1_209_600,
      group_by: 'caller',
    });
    expect(fortnights.buckets.every(isMonday)).toBe(true);
    expect(fortnights.buckets.every((start) => (Date.parse(start) - FIRST_MONDAY) % (2 * WEEK) === 0)).toBe(true);
    // Days start at midnight UTC; three days (not whole weeks) on the epoch's grid.
    const days = await checked({ since: iso(T0 - 2 * HOUR), until: iso(T0 + 2 * DAY), bucket_seconds: 86_400, group_by: 'team' });
    expect(days.buckets).toEqual([iso(T0 - 10 * HOUR), iso(T0 + 14 * HOUR), iso(T0 + 38 * HOUR)]);
    const threeDays = await checked({ since: iso(T0), until: iso(T0 + 30 * DAY), bucket_seconds: 259_200, group_by: 'model' });
    expect(threeDays.buckets.every((start) => Date.parse(start) % (3 * DAY) === 0)).toBe(true);
    // Derived widths of whole weeks (the ladder's last, and beyond it) start on Mondays too.
    for (const [days, seconds] of [
      [200, 604_800],
      [1000, 2 * 604_800],
    ] as const) {
      const range = { since: iso(T0 - (days / 2) * DAY), until: iso(T0 + (days / 2) * DAY) };
      const derived = await fullSeries(range);
      expect(derived.bucket_seconds).toBe(seconds);
      expect(derived.buckets.length).toBeLessThanOrEqual(120);
      expect(derived.buckets.every(isMonday)).toBe(true);
      expectReference(derived, reference(ALL_ROWS, { ...range, bucket_seconds: seconds, group_by: 'model' }));
    }
  });

  it('puts rows before the first Monday after the epoch in the week of 1969-12-29', async () => {
    const answer = await checked({ since: iso(0), until: iso(Date.UTC(1970, 0, 19)), bucket_seconds: 604_800, group_by: 'caller' });
    expect(answer.buckets).toEqual([iso(Date.UTC(1969, 11, 29)), iso(FIRST_MONDAY), iso(Date.UTC(1970, 0, 12))]);
    expect(answer.series).toHaveLength(1);
    expect(answer.series[0]!.points.map((entry) => [entry.start, entry.requests, entry.p50_latency_ms])).toEqual([
      [iso(Date.UTC(1969, 11, 29)), 2, 10],
      [iso(FIRST_MONDAY), 1, 30],
    ]);
  });

  it('folds the groups beyond max_lines into one "(other)" line, exactly: sums and percentiles over the folded rows', async () => {
    // 26 callers: by default 19 lines of their own and one for the other 7.
    const byDefault = await checked({ ...FOLD_RANGE, group_by: 'caller' });
    expect([byDefault.groups, byDefault.series.length, byDefault.series.at(-1)!.folded_groups]).toEqual([FOLDING_CALLERS, 20, 7]);

    // The largest by cost; of two equal in cost, the one with more requests.
    const four = await checked({ ...FOLD_RANGE, group_by: 'caller', max_lines: 4 });
    expect(four.series.map((line) => [line.group, line.folded_groups])).toEqual([
      ['twin-a', 0],
      ['twin-b', 0],
      ['whale', 0],
      ['(other)', FOLDING_CALLERS - 3],
    ]);
    // A caller really named "(other)" keeps a line of its own: folded_groups tells the two apart.
    const five = await checked({ ...FOLD_RANGE, group_by: 'caller', max_lines: 5 });
    expect(five.series.map((line) => [line.group, line.folded_groups])).toEqual([
      ['(other)', 0],
      ['twin-a', 0],
      ['twin-b', 0],
      ['whale', 0],
      ['(other)', FOLDING_CALLERS - 4],
    ]);
    // Equal in cost and requests: by name.
    const six = await checked({ ...FOLD_RANGE, group_by: 'caller', max_lines: 6 });
    expect(six.series.map((line) => line.group)).toEqual(['(other)', 'tie-x', 'twin-a', 'twin-b', 'whale', '(other)']);
    await checked({ ...FOLD_RANGE, group_by: 'caller', max_lines: 2 });
    await checked({ ...FOLD_RANGE, group_by: 'caller', max_lines: 100 });

    // The lines add up to the ledger's usage of the range, the folded one included.
    const usage = await gateway.graphql(
      'query ($since: DateTimeISO, $until: DateTimeISO) { usage(since: $since, until: $until) { totals { requests succeeded failed total_tokens cost_usd } } }',
      { since: FOLD_RANGE.since, until: FOLD_RANGE.until },
      asAdmin,
    );
    const totals = usage.body.data.usage.totals;
    const points = four.series.flatMap((line) => line.points);
    const sum = (pick: (entry: Point) => number): number => points.reduce((total, entry) => total + pick(entry), 0);
    expect([
      sum((entry) => entry.requests),
      sum((entry) => entry.succeeded),
      sum((entry) => entry.failed),
      sum((entry) => entry.total_tokens),
    ]).toEqual([totals.requests, totals.succeeded, totals.failed, totals.total_tokens]);
    expect(Math.abs(sum((entry) => entry.cost_usd) - totals.cost_usd)).toBeLessThan(1e-10);
  });

  it('folds teams and models the same way, down to one line of everything, with or without percentiles', async () => {
    const teams = await checked({ ...FOLD_RANGE, group_by: 'team' });
    expect([teams.groups, teams.series.some((line) => line.folded_groups > 0)]).toEqual([10, false]);
    const threeTeams = await checked({ ...FOLD_RANGE, group_by: 'team', max_lines: 3 });
    expect(threeTeams.series.map((line) => [line.group, line.folded_groups])).toEqual([
      ['ocean', 0],
      ['pair', 0],
      ['(other)', 8],
    ]);
    const everything = await checked({ ...FOLD_RANGE, group_by: 'model', max_lines: 1 });
    expect(everything.series.map((line) => [line.group, line.folded_groups])).toEqual([['(other)', 2]]);
    // Sums alone (no percentile selected): the same folded sums.
    const sumsOnly = await gateway.graphql(
      `query ($since: DateTimeISO, $until: DateTimeISO) { usage_series(since: $since, until: $until, bucket_seconds: 3600, group_by: team, max_lines: 3) {
        series { group folded_groups points { start requests cost_usd } } } }`,
      { since: FOLD_RANGE.since, until: FOLD_RANGE.until },
      asAdmin,
    );
    expect(sumsOnly.body.data.usage_series.series).toEqual(
      threeTeams.series.map((line) => ({
        group: line.group,
        folded_groups: line.folded_groups,
        points: line.points.map((entry) => ({ start: entry.start, requests: entry.requests, cost_usd: entry.cost_usd })),
      })),
    );
    // A member's own generations only: one group, never folded.
    const bobs = await fullSeries({ ...THREE_HOURS, group_by: 'caller', max_lines: 1 }, bearer(bob.key));
    expect(bobs.series.map((line) => [line.group, line.folded_groups])).toEqual([['bob', 0]]);

    expect(await fullRefusal({ ...FOLD_RANGE, max_lines: 0 })).toEqual(['validation_error', 'max_lines: must be an integer from 1 to 100']);
    expect(await fullRefusal({ ...FOLD_RANGE, max_lines: 101 })).toEqual([
      'validation_error',
      'max_lines: must be an integer from 1 to 100',
    ]);
  });

  it("keeps ranges between 1970 and 9999, and every width inside GraphQL's Int, derived ones included", async () => {
    expect(await fullRefusal({ since: '0001-01-01T00:00:00.000Z', until: '9999-12-31T23:59:59.999Z' })).toEqual([
      'validation_error',
      'since: must be 1970-01-01T00:00:00.000Z or later (the ledger holds nothing older)',
    ]);
    expect((await fullRefusal({ since: iso(-1), until: iso(T0), bucket_seconds: 2_147_483_647 }))[1]).toMatch(/^since: /);
    // Beyond 32 bits: GraphQL's own refusal, naming the parameter.
    expect(await fullRefusal({ ...THREE_HOURS, bucket_seconds: 2_147_483_648 })).toEqual(['validation_error', 'parameter: bucket_seconds']);

    // The longest range there is, with the width derived: whole weeks from Monday, in 32 bits, at most 120 buckets.
    const everything = { since: iso(0), until: '9999-12-31T23:59:59.999Z' };
    const longest = await fullSeries({ ...everything, group_by: 'caller' });
    expect(longest.bucket_seconds).toBeLessThanOrEqual(MAX_BUCKET_SECONDS);
    expect(longest.bucket_seconds % 604_800).toBe(0);
    expect(longest.buckets.length).toBeLessThanOrEqual(120);
    expect(longest.buckets.every(isMonday)).toBe(true);
    expectReference(longest, reference(ALL_ROWS, { ...everything, bucket_seconds: longest.bucket_seconds, group_by: 'caller' }));
    // The widest bucket asked for: 118 of them from the epoch.
    const widest = await checked({ ...everything, bucket_seconds: MAX_BUCKET_SECONDS, group_by: 'model' });
    expect([widest.buckets.length, widest.buckets[0]]).toEqual([118, iso(0)]);
    const lastDay = await checked({
      since: '9999-12-31T00:00:00.000Z',
      until: '9999-12-31T23:59:59.999Z',
      bucket_seconds: MAX_BUCKET_SECONDS,
      group_by: 'team',
    });
    expect(lastDay.series).toEqual([]);

    // Without since, a day before until, but not before 1970.
    const firstHours = await fullSeries({ until: iso(6 * HOUR) });
    expect([firstHours.since, firstHours.bucket_seconds, firstHours.buckets.length]).toEqual([iso(0), 300, 72]);
  });

  it('the dashboard draws the folded line as "N other callers" and its totals still add up', async () => {
    const browser = await openBrowser({ width: 1200, height: 900 });
    try {
      const { page } = browser;
      await page.goto(`${gateway.url}/dashboard`);
      await page.locator('body[data-state="needs-key"]').waitFor({ timeout: 15_000 });
      await page.locator('#api-key').fill(ADMIN_KEY);
      await page.locator('#use-key').click();
      await page.locator('body[data-state="ready"]').waitFor({ timeout: 20_000 });
      // A custom range: the three folding hours (the inputs are in the page's local time).
      const loads = await page.evaluate(
        ([since, until]) => {
          const local = (ms: number): string => {
            const date = new Date(ms);
            const pad = (value: number): string => String(value).padStart(2, '0');
            return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
          };
          (document.getElementById('range') as HTMLSelectElement).value = 'custom';
          (document.getElementById('since') as HTMLInputElement).value = local(since!);
          (document.getElementById('until') as HTMLInputElement).value = local(until!);
          const before = (window as unknown as { llmopDashboard: { loads: number } }).llmopDashboard.loads;
          (document.getElementById('range-form') as HTMLFormElement).requestSubmit();
          return before;
        },
        [FOLD_T0, FOLD_T0 + 3 * HOUR],
      );
      await waitForDashboardLoad(page, loads);
      const shown = await page.evaluate(() => {
        const charts = (window as unknown as { llmopDashboard: { charts: Record<string, any> } }).llmopDashboard.charts;
        const read = (name: string) => ({
          labels: (charts[name].series as Array<{ label?: string }>).slice(1).map((series) => series.label),
          sums: (charts[name].data as Array<Array<number | null>>)
            .slice(1)
            .map((values) => values.reduce((sum: number, value) => sum + (value ?? 0), 0)),
        });
        return { tokens: read('tokens-caller'), spend: read('spend-team'), requests: read('requests') };
      });
      const callers = await fullSeries({ since: FOLD_RANGE.since, until: FOLD_RANGE.until, group_by: 'caller' });
      expect(shown.tokens.labels).toEqual([...callers.series.slice(0, -1).map((line) => line.group), '7 other callers']);
      expect(shown.tokens.labels).toHaveLength(20);
      const usage = await gateway.graphql(
        'query ($since: DateTimeISO, $until: DateTimeISO) { usage(since: $since, until: $until) { totals { requests total_tokens cost_usd } } }',
        { since: FOLD_RANGE.since, until: FOLD_RANGE.until },
        asAdmin,
      );
      const { totals } = usage.body.data.usage;
      const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0);
      expect(sum(shown.tokens.sums)).toBe(totals.total_tokens);
      expect(sum(shown.requests.sums)).toBe(totals.requests);
      expect(Math.abs(sum(shown.spend.sums) - totals.cost_usd)).toBeLessThan(1e-9);
      // Teams fit: "" is "(no team)", not a folded line.
      expect(shown.spend.labels).toContain('(no team)');
      expect(browser.requested.filter((url) => new URL(url).hostname !== '127.0.0.1')).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('agrees with the ledger after real traffic: sums with usage, percentiles with the generations listed', async () => {
    fake.failPromptsContaining = 'boom';
    const since = Date.now() - 1000;
    const generate = (key: string, prompt: string, model: string) =>
      gateway.graphql(
        'mutation ($prompt: String!, $model_id: String!) { generate(prompt: $prompt, model_id: $model_id, max_tokens: 8) { text } }',
        { prompt, model_id: model },
        bearer(key),
      );
    for (let index = 0; index < 12; index++) {
      fake.latencyMs = (index % 4) * 7;
      const key = index % 3 === 0 ? carol.key : alice.key;
      const model = index % 2 === 0 ? CHAT_MODEL : COMPLETION_MODEL;
      await generate(key, index % 5 === 4 ? `please boom ${index}` : `tell me about number ${index} today`, model);
    }
    fake.latencyMs = 0;
    fake.failPromptsContaining = undefined;
    const until = Date.now() + 1000;
    const range = { since: iso(since), until: iso(until), bucket_seconds: 60 };

    const listed = await gateway.graphql(
      'query ($since: DateTimeISO, $until: DateTimeISO) { generations(since: $since, until: $until, limit: 200) { generations { model_id caller team status created_at metrics { latency_ms } } } }',
      { since: range.since, until: range.until },
      asAdmin,
    );
    const generations = listed.body.data.generations.generations as Array<{
      model_id: string;
      caller: string;
      team: string | null;
      status: string;
      created_at: string;
      metrics: { latency_ms: number };
    }>;
    expect(generations).toHaveLength(12);
    expect(generations.filter((generation) => generation.status === 'failed')).toHaveLength(2);

    for (const groupBy of ['model', 'caller', 'team'] as const) {
      const answer = await series({ ...range, group_by: groupBy });
      const usage = await gateway.graphql(
        `query ($since: DateTimeISO, $until: DateTimeISO, $group_by: UsageGroupBy) { usage(since: $since, until: $until, group_by: $group_by) {
          rows { group requests succeeded failed input_tokens output_tokens total_tokens cost_usd } } }`,
        { since: range.since, until: range.until, group_by: groupBy },
        asAdmin,
      );
      const rows = usage.body.data.usage.rows as Array<Record<string, number | string>>;
      expect(answer.series.map((line) => line.group)).toEqual(rows.map((row) => row.group));
      for (const [index, line] of answer.series.entries()) {
        const summed = { requests: 0, succeeded: 0, failed: 0, input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_usd: 0 };
        for (const entry of line.points) for (const field of Object.keys(summed) as (keyof typeof summed)[]) summed[field] += entry[field];
        const { group: _group, cost_usd: usageCost, ...usageCounts } = rows[index]!;
        const { cost_usd: seriesCost, ...seriesCounts } = summed;
        expect(seriesCounts).toEqual(usageCounts);
        expect(Math.abs(seriesCost - Number(usageCost))).toBeLessThan(1e-10);
      }
    }

    // Percentiles by model and minute, from the listed rows.
    const nearestRank = (sorted: number[], fraction: number): number => sorted[Math.ceil(sorted.length * fraction) - 1]!;
    const expected = new Map<string, { p50: number; p95: number }>();
    const latencies = new Map<string, number[]>();
    for (const generation of generations) {
      if (generation.status !== 'succeeded') continue;
      const bucket = Math.floor(Date.parse(generation.created_at) / MINUTE) * MINUTE;
      const key = `${generation.model_id} ${iso(bucket)}`;
      latencies.set(key, [...(latencies.get(key) ?? []), generation.metrics.latency_ms]);
    }
    for (const [key, values] of latencies) {
      const sorted = values.sort((left, right) => left - right);
      expected.set(key, { p50: nearestRank(sorted, 0.5), p95: nearestRank(sorted, 0.95) });
    }
    const byModel = await series({ ...range, group_by: 'model' });
    const actual = new Map<string, { p50: number; p95: number }>();
    for (const line of byModel.series) {
      for (const entry of line.points) {
        if (entry.p50_latency_ms === null || entry.p95_latency_ms === null) continue;
        actual.set(`${line.group} ${entry.start}`, { p50: entry.p50_latency_ms, p95: entry.p95_latency_ms });
      }
    }
    expect(actual).toEqual(expected);
    expect(actual.size).toBeGreaterThan(0);
  });
});

describe('derived bucket widths', () => {
  it("stay inside GraphQL's Int over any range from 1970 to 10000, at most 120 buckets", () => {
    for (const since of [0, 1, 3 * DAY, 4 * DAY, 4 * DAY + 1, WEEK, 100 * DAY, Date.UTC(2000, 0, 1)]) {
      for (const until of [MAX_SERIES_TIME_MS, MAX_SERIES_TIME_MS - 1, MAX_SERIES_TIME_MS - 5 * DAY]) {
        const width = bucketWidthMs(new Date(since), new Date(until), undefined);
        expect(width / 1000).toBeLessThanOrEqual(MAX_BUCKET_SECONDS);
        expect(bucketCount(new Date(since), new Date(until), width)).toBeLessThanOrEqual(120);
        expect(width % WEEK).toBe(0);
      }
    }
    // The worst case: the whole span over 119 buckets, one more reaching outside it.
    expect(bucketWidthMs(new Date(0), new Date(MAX_SERIES_TIME_MS), undefined) / 1000).toBe(3521 * 604_800);
  });
});
