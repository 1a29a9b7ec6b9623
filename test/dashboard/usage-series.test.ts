/**
 * usage_series (issue 17, what GET /dashboard charts): requests, failures, tokens, cost and p50/p95
 * latency per time bucket and per model, caller or team, exactly, on the embedded SQLite ledger and a
 * real PostgreSQL. Rows at chosen times and latencies are written through the storage layer before the
 * gateway opens the ledger (the gateway's clock cannot be set from outside); then real traffic through
 * the gateway in front of the fake upstream is checked against the ledger's own usage and list.
 */
import type { GenerationStatus } from '../../src/storage/ledger-types';
import { UsageSeriesDocument, type UsageSeriesQuery, type UsageSeriesQueryVariables } from '../generated/graphql';
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

const { alice, bob, carol } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);

const HOUR = 3_600_000;
const MINUTE = 60_000;
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

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const ledger = await setup.freshLedger();
    await seed(ledger.settings, SEEDED);
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
