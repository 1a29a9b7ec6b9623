/**
 * GET /metrics as Prometheus scrapes it: the text format parsed by a real parser, every metric the issue
 * names with the figures the traffic made, admins only when keys are on, and series counts that no
 * flood of random model ids or paths can grow.
 */
// @ts-expect-error: the parser ships no types.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { rest } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { ADMIN_KEY, bearer, FILE_KEYS, writeKeysFile } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { openStream } from '../streaming/sse-client';

interface Sample {
  readonly value?: string;
  readonly labels?: Record<string, string>;
  readonly buckets?: Record<string, string>;
  readonly count?: string;
  readonly sum?: string;
}
interface Family {
  readonly name: string;
  readonly type: string;
  readonly metrics: Sample[];
}

const MODEL = 'metered-chat';
const FREE_MODEL = 'free-chat';
const PRICE = { input_per_million: 3, output_per_million: 15 };

interface Scrape {
  readonly families: Map<string, Family>;
  /** `name_count{labels}` lines of histograms: the parser merges a histogram's label sets into one sample. */
  readonly histogramCounts: Array<{ readonly name: string; readonly labels: Record<string, string>; readonly count: number }>;
}

async function scrape(gateway: RunningGateway, headers: Record<string, string> = bearer(ADMIN_KEY)): Promise<Scrape> {
  const response = await fetch(`${gateway.url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text) as Family[];
  const histogramCounts = [...text.matchAll(/^(\w+)_count\{([^}]*)\} (\S+)$/gm)].map(([, name, labels, count]) => ({
    name: name!,
    labels: Object.fromEntries([...labels!.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key!, value!])),
    count: Number(count),
  }));
  return { families: new Map(families.map((family) => [family.name, family])), histogramCounts };
}

const matches = (labels: Record<string, string> | undefined, wanted: Record<string, string>): boolean =>
  Object.entries(wanted).every(([key, value]) => labels?.[key] === value);

/** The samples of a family whose labels include `labels`. */
function samples({ families }: Scrape, name: string, labels: Record<string, string> = {}): Sample[] {
  const family = families.get(name);
  if (!family) throw new Error(`no metric ${name}`);
  return family.metrics.filter((sample) => matches(sample.labels, labels));
}

/** A counter's or gauge's value summed over the matching samples; a histogram's observation count. */
function total(scraped: Scrape, name: string, labels: Record<string, string> = {}): number {
  if (scraped.families.get(name)?.type === 'HISTOGRAM') {
    return scraped.histogramCounts
      .filter((line) => line.name === name && matches(line.labels, labels))
      .reduce((sum, line) => sum + line.count, 0);
  }
  return samples(scraped, name, labels).reduce((sum, sample) => sum + Number(sample.value ?? 0), 0);
}

describe('GET /metrics', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL, FREE_MODEL] });
    gateway = await startGateway({
      catalog: {
        endpoints: [{ name: 'vllm', base_url: fake.url }],
        models: [
          { id: MODEL, provider: 'vllm', pricing: PRICE },
          { id: FREE_MODEL, provider: 'vllm' },
        ],
      },
      env: {
        API_KEYS: ADMIN_KEY,
        API_KEYS_FILE: writeKeysFile([FILE_KEYS.alice, FILE_KEYS.dave]),
        // Dave may generate once per window: his second call is a rate-limit refusal.
        RATE_LIMIT_GENERATE: '100',
      },
    });
  });
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('answers 401 without a key and 403 to a member; an admin reads it', async () => {
    const none = await fetch(`${gateway.url}/metrics`);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: 'unauthorized' });
    const member = await fetch(`${gateway.url}/metrics`, { headers: bearer(FILE_KEYS.alice.key) });
    expect(member.status).toBe(403);
    expect(await member.json()).toMatchObject({ error: 'forbidden' });
    await scrape(gateway);
  });

  it('counts generations, tokens, cost, durations and refusals as the traffic made them, in a format a real parser reads', async () => {
    const before = await scrape(gateway);
    const answers: Array<{ input_tokens: number; output_tokens: number; cost: number }> = [];
    for (const prompt of ['first metered prompt', 'second metered prompt here']) {
      const response = await rest(gateway, 'POST', '/generate', { prompt, model_id: MODEL, max_tokens: 8 }, bearer(ADMIN_KEY));
      expect(response.status).toBe(200);
      answers.push({ ...response.body.metrics, cost: response.body.metadata.cost_usd.total });
    }
    fake.queueBehaviours({ kind: 'status', status: 500 });
    const failed = await rest(gateway, 'POST', '/generate', { prompt: 'this one fails', model_id: MODEL }, bearer(ADMIN_KEY));
    expect(failed.status).toBe(502);
    // A stream: its first token is timed.
    const stream = await openStream(
      `${gateway.url}/api/v1/generate/stream`,
      { prompt: 'stream it', model_id: FREE_MODEL },
      bearer(ADMIN_KEY),
    );
    expect(stream.status).toBe(200);
    await stream.ended;
    // Refusals: a budget with no room, and dave's second generate in the window.
    const budget = await rest(
      gateway,
      'POST',
      '/budgets',
      { scope: 'key', subject: 'alice', limit_usd: 0, period: 'total' },
      bearer(ADMIN_KEY),
    );
    expect(budget.status).toBe(201);
    const refused = await rest(gateway, 'POST', '/generate', { prompt: 'no money', model_id: MODEL }, bearer(FILE_KEYS.alice.key));
    expect(refused.status).toBe(402);
    for (const expected of [200, 429]) {
      const response = await rest(gateway, 'POST', '/generate', { prompt: 'dave again', model_id: FREE_MODEL }, bearer(FILE_KEYS.dave.key));
      expect(response.status).toBe(expected);
    }

    const after = await scrape(gateway);
    const delta = (name: string, labels: Record<string, string> = {}): number => total(after, name, labels) - total(before, name, labels);

    expect(delta('llmop_generations_total', { model: MODEL, provider: 'vllm', source: 'generate', status: 'succeeded' })).toBe(2);
    expect(delta('llmop_generations_total', { model: MODEL, status: 'failed' })).toBe(1);
    expect(delta('llmop_generations_total', { model: FREE_MODEL, source: 'stream', status: 'succeeded' })).toBe(1);
    const sum = (pick: (answer: (typeof answers)[number]) => number): number => answers.reduce((total, answer) => total + pick(answer), 0);
    // The failed call counted its prompt's input tokens, as its ledger row does.
    expect(delta('llmop_tokens_total', { model: MODEL, direction: 'output' })).toBe(sum((answer) => answer.output_tokens));
    expect(delta('llmop_tokens_total', { model: MODEL, direction: 'input' })).toBeGreaterThan(sum((answer) => answer.input_tokens));
    expect(delta('llmop_cost_usd_total', { model: MODEL })).toBeCloseTo(
      sum((answer) => answer.cost),
      12,
    );
    expect(delta('llmop_upstream_duration_seconds', { model: MODEL })).toBe(2);
    expect(delta('llmop_time_to_first_token_seconds', { model: FREE_MODEL })).toBe(1);
    expect(delta('llmop_refusals_total', { reason: 'budget' })).toBe(1);
    expect(delta('llmop_refusals_total', { reason: 'rate_limit' })).toBe(1);
    expect(delta('llmop_http_requests_total', { route: '/api/v1/generate', method: 'POST', status: '200' })).toBe(3);
    expect(delta('llmop_http_requests_total', { route: '/api/v1/generate', method: 'POST', status: '502' })).toBe(1);
    expect(delta('llmop_http_requests_total', { route: '/api/v1/generate/stream', method: 'POST', status: '200' })).toBe(1);
    expect(delta('llmop_http_request_duration_seconds', { route: '/api/v1/generate', status: '429' })).toBe(1);

    expect(after.families.get('llmop_http_request_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(after.families.get('llmop_time_to_first_token_seconds')?.type).toBe('HISTOGRAM');
    expect(after.families.get('llmop_generations_total')?.type).toBe('COUNTER');
    // The scrape itself is in flight while it is counted.
    expect(total(after, 'llmop_in_flight_requests')).toBeGreaterThanOrEqual(1);
    expect(samples(after, 'llmop_breaker_state', { endpoint: 'vllm' }).map((sample) => Number(sample.value))).toEqual([0]);
    expect(samples(after, 'llmop_endpoint_queue_depth', { endpoint: 'vllm' }).map((sample) => Number(sample.value))).toEqual([0]);
    expect(after.families.has('llmop_evaluation_cells_total')).toBe(true);
    // Node's own process metrics.
    expect(total(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(after.families.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('keeps its series bounded: a flood of random model ids and paths adds none', async () => {
    const flood = async (round: number): Promise<void> => {
      const requests: Array<Promise<unknown>> = [];
      for (let index = 0; index < 50; index += 1) {
        const random = `${round}-${index}-${Math.random().toString(36).slice(2)}`;
        const headers = bearer(ADMIN_KEY);
        requests.push(rest(gateway, 'POST', '/generate', { prompt: 'hi', model_id: `no-such-${random}` }, headers));
        requests.push(rest(gateway, 'GET', `/generations/gen_${random}`, undefined, headers));
        requests.push(fetch(`${gateway.url}/api/v1/${random}`, { headers }));
        requests.push(fetch(`${gateway.url}/${random}/${random}`, { headers }));
        requests.push(fetch(`${gateway.url}/v1/${random}`, { headers }));
        requests.push(
          gateway.graphql('mutation ($m: String!) { generate(prompt: "hi", model_id: $m) { text } }', { m: `no-such-${random}` }, headers),
        );
      }
      await Promise.all(requests);
    };
    const seriesCount = ({ families, histogramCounts }: Scrape): number =>
      // The gateway's own series: Node's (a GC kind seen for the first time, say) may come and go.
      histogramCounts.filter((line) => line.name.startsWith('llmop_')).length +
      [...families.values()]
        .filter((family) => family.name.startsWith('llmop_'))
        .reduce((total, family) => total + family.metrics.length, 0);

    await flood(0);
    // The generate limit (100 a minute, a burst of 100 refilled one call every 600 ms) runs out within the floods,
    // at a point that depends on the tests before this one: spend it now, so the refusals' series are in the baseline.
    const headers = bearer(ADMIN_KEY);
    let status = 0;
    for (let spent = 0; spent <= 100 && status !== 429; spent += 1) {
      status = (await rest(gateway, 'POST', '/generate', { prompt: 'hi', model_id: 'no-such-model' }, headers)).status;
    }
    expect(status).toBe(429);
    await gateway.graphql('mutation ($m: String!) { generate(prompt: "hi", model_id: $m) { text } }', { m: 'no-such-model' }, headers);
    await flood(1);
    // The limiter lets a call through now and then (GCRA): one that gets past it answers 404 (no such model).
    // Wait for one, so that series is in the baseline too, however the floods fell.
    const notFound = await poll(
      () => rest(gateway, 'POST', '/generate', { prompt: 'hi', model_id: 'no-such-model' }, headers),
      (response) => response.status === 404,
    );
    expect(notFound.status).toBe(404);
    await scrape(gateway); // a scrape is a request too: its own series exist from the next one on
    const settled = seriesCount(await scrape(gateway));
    await flood(2);
    await flood(3);
    const after = await scrape(gateway);

    expect(seriesCount(after)).toBe(settled);
    const routes = new Set(samples(after, 'llmop_http_requests_total').map((sample) => sample.labels?.route));
    for (const route of routes) expect(route).not.toMatch(/no-such|\d+-\d+-/);
    const models = new Set(samples(after, 'llmop_generations_total').map((sample) => sample.labels?.model));
    expect([...models].every((model) => model === MODEL || model === FREE_MODEL)).toBe(true);
  });
});

describe('GET /metrics with METRICS_PUBLIC=true', () => {
  it('answers a scraper without a key even though API keys are on', async () => {
    const gateway = await startGateway({ env: { API_KEYS: ADMIN_KEY, METRICS_PUBLIC: 'true' } });
    try {
      const scraped = await scrape(gateway, {});
      expect(scraped.families.has('llmop_http_requests_total')).toBe(true);
    } finally {
      await gateway.close();
    }
  });
});
