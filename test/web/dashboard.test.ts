/**
 * GET /dashboard in a real Chromium, offline (issue 17): a gateway with API keys on, in front of the fake
 * upstream, with a day of history in its ledger and real traffic on top (generations on two models by two
 * callers in two teams, some failing; budgets; prompt versions; feedback; a small evaluation run). The
 * page loads without a key, asks for an admin key, and then every chart and panel has data points read
 * from GraphQL; every request it makes stays on 127.0.0.1. A screenshot goes to artifacts/dashboard.png.
 */
import type { Page } from 'playwright-core';
import { type Browser, openBrowser, saveScreenshot } from '../support/chromium';
import { waitForDashboardLoad } from '../support/dashboard-page';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import {
  ADMIN_KEY,
  bearer,
  CHAT_MODEL,
  COMPLETION_MODEL,
  FILE_KEYS,
  LEDGER_MODELS,
  ledgerCatalog,
  sqliteLedgerSetup,
  writeKeysFile,
} from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { type SeedRow, seedFinished } from '../dashboard/seed-ledger';

/** Two callers in two teams: alice (red, member) and carol (blue, admin); the inline admin key is key-1 (no team). */
const { alice, carol } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);
const TIME_CHARTS = [
  'requests',
  'errors',
  'latency',
  'tokens-model',
  'tokens-caller',
  'tokens-team',
  'spend-model',
  'spend-caller',
  'spend-team',
];
const PANELS = [...TIME_CHARTS, 'budgets', 'feedback-model', 'feedback-prompt', 'evaluations'];
const HOUR = 3_600_000;

interface DashboardBrowser extends Browser {
  /** GraphQL requests: whether each carried the bearer key. */
  readonly graphqlAuthorization: Array<string | undefined>;
  readonly consoleErrors: string[];
}

async function openDashboardBrowser(): Promise<DashboardBrowser> {
  const browser = await openBrowser({ width: 1400, height: 900 });
  const graphqlAuthorization: Array<string | undefined> = [];
  const consoleErrors: string[] = [];
  browser.context.on('request', (request) => {
    if (new URL(request.url()).pathname === '/graphql') graphqlAuthorization.push(request.headers().authorization);
  });
  browser.page.on('console', (message) => {
    // A browser asks for /favicon.ico, which LLMOP does not serve (a 404): not the page's doing.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) consoleErrors.push(message.text());
  });
  browser.page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
  return { ...browser, graphqlAuthorization, consoleErrors };
}

/** A day of history, so the charts have a shape: every other hour, both models, both callers, a failure now and then. */
function history(now: number): SeedRow[] {
  const rows: SeedRow[] = [];
  for (let hour = 22; hour >= 1; hour -= 2) {
    for (const [index, who] of [
      { caller: 'alice', team: 'red' },
      { caller: 'carol', team: 'blue' },
    ].entries()) {
      for (const [modelIndex, modelId] of LEDGER_MODELS.entries()) {
        const requests = 1 + ((hour + index + modelIndex) % 4);
        for (let request = 0; request < requests; request++) {
          const inputTokens = 40 + ((hour * 7 + request * 13) % 60);
          const outputTokens = 20 + ((hour * 5 + request * 11) % 40);
          const price = modelId === CHAT_MODEL ? [3, 15] : [0.5, 1.5];
          rows.push({
            createdAt: now - hour * HOUR + request * 60_000 + index * 7_000,
            ...who,
            modelId,
            status: (hour + request) % 7 === 0 ? 'failed' : 'succeeded',
            latencyMs: 80 + ((hour * 37 + request * 53 + modelIndex * 101) % 400),
            inputTokens,
            outputTokens,
            costUsd: (inputTokens * price[0]! + outputTokens * price[1]!) / 1_000_000,
          });
        }
      }
    }
  }
  return rows;
}

describe('the dashboard in a real browser, offline, with API keys on', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  let browser: DashboardBrowser;
  let evaluationId: string;

  const graphql = async (query: string, variables: Record<string, unknown> = {}, headers = asAdmin) => {
    const { body } = await gateway.graphql(query, variables, headers);
    if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  const generate = (key: string, prompt: string, model: string) =>
    gateway.graphql(
      'mutation ($prompt: String!, $model_id: String!) { generate(prompt: $prompt, model_id: $model_id, max_tokens: 12) { metadata { generation_id } } }',
      { prompt, model_id: model },
      bearer(key),
    );

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const ledger = await sqliteLedgerSetup().freshLedger();
    await seedFinished(ledger.settings, history(Date.now()));
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { ...ledger.env, API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([alice, carol]), EVAL_CONCURRENCY: '2' },
    });

    // Budgets: one per team, and a global one.
    for (const [scope, subject, limit] of [
      ['team', 'red', 0.03],
      ['team', 'blue', 0.08],
      ['global', null, 0.2],
    ] as const) {
      await graphql(
        'mutation ($scope: BudgetScope!, $subject: String, $limit: Float!) { create_budget(scope: $scope, subject: $subject, limit_usd: $limit, period: month) { id } }',
        { scope, subject, limit },
      );
    }

    // Generations on both models by both callers, some failing, at varied upstream latencies.
    fake.failPromptsContaining = 'boom';
    const generated: string[] = [];
    for (let index = 0; index < 16; index++) {
      fake.latencyMs = 5 + (index % 5) * 9;
      const key = index % 2 === 0 ? alice.key : carol.key;
      const model = index % 4 < 2 ? CHAT_MODEL : COMPLETION_MODEL;
      const prompt = index % 6 === 5 ? `this one goes boom ${index}` : `write a short line about topic ${index} please`;
      const { body } = await generate(key, prompt, model);
      const id = body.data?.generate?.metadata?.generation_id as string | undefined;
      if (id) generated.push(id);
      else if (!prompt.includes('boom')) throw new Error(JSON.stringify(body));
    }
    fake.latencyMs = 0;
    fake.failPromptsContaining = undefined;
    expect(generated.length).toBe(14);

    // Two versions of a prompt, used by alice, and feedback per model and per prompt version.
    await graphql(
      'mutation { a: create_prompt_version(name: "greet", template: "Say hello to {{name}}.", model_id: "tiny-chat") { version } b: create_prompt_version(name: "greet", template: "Write a warm welcome for {{name}}.", model_id: "tiny-chat") { version } }',
    );
    const fromPrompt: string[] = [];
    for (const [version, name] of [
      [1, 'Ada'],
      [2, 'Grace'],
      [1, 'Alan'],
      [2, 'Barbara'],
    ] as const) {
      const data = await graphql(
        'mutation ($version: Int, $variables: JSONObject!) { generate_from_prompt(name: "greet", version: $version, variables: $variables) { metadata { generation_id } } }',
        { version, variables: { name } },
        bearer(alice.key),
      );
      fromPrompt.push(data.generate_from_prompt.metadata.generation_id);
    }
    const rated = [...generated.slice(0, 5), ...fromPrompt];
    for (const [index, id] of rated.entries()) {
      await graphql(
        'mutation ($id: String!, $score: Float, $thumbs: Thumbs) { submit_feedback(generation_id: $id, score: $score, thumbs: $thumbs) { id } }',
        {
          id,
          score: [0.9, 0.4, 0.7, 1, 0.2, 0.8, 0.5, 0.6, 0.3][index % 9],
          thumbs: index % 3 === 1 ? 'down' : 'up',
        },
      );
    }

    // A small evaluation run: 3 cases x 2 prompt versions x 2 models.
    const dataset = await graphql(
      'mutation { create_dataset(name: "names", items: [{ variables: { name: "Ada" }, expected: "echo: Say hello to Ada." }, { variables: { name: "Grace" }, expected: "echo: Say hello to Grace." }, { variables: { name: "Linus" }, expected: "echo: Say hello to Linus." }]) { id } }',
    );
    const started = await graphql(
      `mutation ($dataset: String!) { start_evaluation(name: "greetings", dataset_id: $dataset, prompts: [{ name: "greet", version: 1 }, { name: "greet", version: 2 }],
        model_ids: ["${CHAT_MODEL}", "${COMPLETION_MODEL}"], scorers: [{ type: similarity }, { type: contains, name: "names them", value: "a" }], max_tokens: 12, temperature: 0) { id } }`,
      { dataset: dataset.create_dataset.id },
    );
    evaluationId = started.start_evaluation.id;
    const finished = await poll(
      () => graphql('query ($id: String!) { evaluation(evaluation_id: $id) { status } }', { id: evaluationId }),
      (data) => !['queued', 'running'].includes(data.evaluation.status),
      30_000,
    );
    expect(finished.evaluation.status).toBe('succeeded');

    browser = await openDashboardBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await fake?.close();
  });

  /** What the page shows: each uPlot chart's series labels and non-empty values, and each panel's data-points. */
  const readPage = (page: Page) =>
    page.evaluate(() => {
      const dashboard = (window as unknown as { llmopDashboard: { charts: Record<string, any> } }).llmopDashboard;
      const charts = Object.fromEntries(
        Object.entries(dashboard.charts).map(([name, chart]) => {
          const [xs, ...ys] = chart.data as [number[], ...Array<Array<number | null>>];
          return [
            name,
            {
              buckets: xs.length,
              labels: (chart.series as Array<{ label?: string }>).slice(1).map((series) => series.label),
              points: ys.reduce((sum, values) => sum + values.filter((value) => value !== null && value !== 0).length, 0),
              sums: ys.map((values) => values.reduce((sum: number, value) => sum + (value ?? 0), 0)),
            },
          ];
        }),
      );
      const panels = Object.fromEntries(
        [...document.querySelectorAll<HTMLElement>('[data-chart]')].map((panel) => [panel.dataset.chart, Number(panel.dataset.points)]),
      );
      return { charts, panels, state: document.body.dataset.state, status: document.getElementById('status')?.textContent };
    });

  it('loads without a key, asks for an admin key, then charts every figure from GraphQL, offline', async () => {
    const { page, requested, graphqlAuthorization, consoleErrors } = browser;
    const response = await page.goto(`${gateway.url}/dashboard`);
    expect(response?.status()).toBe(200);
    const policy = response?.headers()['content-security-policy'] ?? '';
    expect(policy).toContain("default-src 'self'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).not.toContain('unsafe');

    await page.locator('body[data-state="needs-key"]').waitFor({ timeout: 15_000 });
    expect(graphqlAuthorization).toEqual([]);
    await page.locator('#api-key').fill(ADMIN_KEY);
    await page.locator('#use-key').click();
    await page.locator('body[data-state="ready"]').waitFor({ timeout: 20_000 });

    const shown = await readPage(page);
    expect(Object.keys(shown.charts).sort()).toEqual([...TIME_CHARTS].sort());
    for (const name of TIME_CHARTS) expect([name, shown.charts[name]!.points > 0]).toEqual([name, true]);
    for (const name of PANELS) expect([name, shown.panels[name]! > 0]).toEqual([name, true]);
    expect(shown.charts.requests!.labels).toEqual([CHAT_MODEL, COMPLETION_MODEL]);
    expect(shown.charts.latency!.labels).toEqual([
      `${CHAT_MODEL} p50`,
      `${CHAT_MODEL} p95`,
      `${COMPLETION_MODEL} p50`,
      `${COMPLETION_MODEL} p95`,
    ]);
    expect(shown.charts['tokens-caller']!.labels).toEqual(['alice', 'carol', 'key-1']);
    expect(shown.charts['spend-team']!.labels).toEqual(['(no team)', 'blue', 'red']);
    expect(shown.panels).toMatchObject({ budgets: 3, 'feedback-model': 2, 'feedback-prompt': 3, evaluations: 4 });

    // The charts add up to what the ledger says (all of it is inside the last 24 hours).
    const usage = await graphql('{ usage { totals { requests failed total_tokens cost_usd } } }');
    const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
    expect(sum(shown.charts.requests!.sums)).toBe(usage.usage.totals.requests);
    expect(sum(shown.charts.errors!.sums)).toBe(usage.usage.totals.failed);
    expect(sum(shown.charts['tokens-team']!.sums)).toBe(usage.usage.totals.total_tokens);
    expect(Math.abs(sum(shown.charts['spend-caller']!.sums) - usage.usage.totals.cost_usd)).toBeLessThan(1e-9);
    expect(usage.usage.totals.failed).toBeGreaterThan(2);
    await page.locator(`[data-evaluation-id="${evaluationId}"]`).waitFor();
    expect(await page.locator(`[data-evaluation-id="${evaluationId}"] th.variant`).count()).toBe(4);

    // The key lives in this tab's session storage only, and went with every GraphQL request.
    expect(await page.evaluate(() => [sessionStorage.getItem('llmop.dashboard.key'), localStorage.length])).toEqual([ADMIN_KEY, 0]);
    expect(graphqlAuthorization.length).toBeGreaterThanOrEqual(4);
    expect(new Set(graphqlAuthorization)).toEqual(new Set([`Bearer ${ADMIN_KEY}`]));

    await saveScreenshot(page, 'dashboard.png');

    expect(requested.filter((url) => new URL(url).hostname !== '127.0.0.1')).toEqual([]);
    expect(requested.some((url) => url.endsWith('/dashboard/uPlot.iife.min.js'))).toBe(true);
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('redraws for another range: the last hour in one-minute buckets', async () => {
    const { page, requested, consoleErrors } = browser;
    const loads = await page.evaluate(() => (window as unknown as { llmopDashboard: { loads: number } }).llmopDashboard.loads);
    await page.locator('#range').selectOption('3600');
    await waitForDashboardLoad(page, loads);
    const shown = await readPage(page);
    expect(await page.locator('#bucket-width').textContent()).toBe('1 min');
    // The real traffic of this test is in the last hour; the history is not.
    for (const name of TIME_CHARTS) expect([name, shown.charts[name]!.points > 0]).toEqual([name, true]);
    expect(shown.charts.requests!.buckets).toBeGreaterThanOrEqual(60);
    const usage = await graphql('query ($since: DateTimeISO) { usage(since: $since) { totals { requests } } }', {
      since: new Date(Date.now() - HOUR + 60_000).toISOString(),
    });
    expect(shown.charts.requests!.sums.reduce((total, value) => total + value, 0)).toBe(usage.usage.totals.requests);
    expect(requested.filter((url) => new URL(url).hostname !== '127.0.0.1')).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('keeps the key for the tab across a reload, and shows a member only their own traffic and no budgets', async () => {
    const { page } = browser;
    await page.reload();
    await page.locator('body[data-state="ready"]').waitFor({ timeout: 20_000 });

    await page.locator('#forget-key').click();
    await page.locator('body[data-state="needs-key"]').waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => sessionStorage.getItem('llmop.dashboard.key'))).toBeNull();

    await page.locator('#api-key').fill(alice.key);
    await page.locator('#use-key').click();
    await page.locator('body[data-state="partial"]').waitFor({ timeout: 20_000 });
    const shown = await readPage(page);
    expect(shown.charts['tokens-caller']!.labels).toEqual(['alice']);
    expect(shown.charts['spend-team']!.labels).toEqual(['red']);
    expect(shown.panels.budgets).toBe(0);
    expect(await page.locator('[data-chart="budgets"] .problem').textContent()).toBe('This needs an admin key.');

    await page.locator('#api-key').fill('not-a-key-at-all-0123456789');
    await page.locator('#use-key').click();
    await page.locator('body[data-state="needs-key"]').waitFor({ timeout: 20_000 });
  }, 60_000);
});
