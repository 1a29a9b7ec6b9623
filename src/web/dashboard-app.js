// The LLMOP dashboard (GET /dashboard): charts of the ledger drawn with uPlot, every figure read from
// POST /graphql on this server. A file rather than inline script, so the page's policy can forbid inline code.
// With API keys on, the key typed in the form is kept in this tab's sessionStorage and sent as a bearer token.
(() => {
  const KEY_STORAGE = 'llmop.dashboard.key';
  const body = document.body;
  const authEnabled = body.dataset.authEnabled === 'true';
  const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#4b5563', '#ea580c'];

  /** What tests and people in the console can read: the uPlot instances by panel, and what each panel shows. */
  const exposed = { charts: {}, panels: {}, loads: 0 };
  window.llmopDashboard = exposed;

  // Latency percentiles cost the server a sort of the range: asked for per model only, where they are charted.
  const SERIES_QUERY = `query DashboardSeries($since: DateTimeISO!, $until: DateTimeISO!) {
  model: usage_series(group_by: model, since: $since, until: $until) { ...Sums series { points { p50_latency_ms p95_latency_ms } } }
  caller: usage_series(group_by: caller, since: $since, until: $until) { ...Sums }
  team: usage_series(group_by: team, since: $since, until: $until) { ...Sums }
}
fragment Sums on UsageSeries {
  bucket_seconds buckets series { group folded_groups points { start requests succeeded failed input_tokens output_tokens total_tokens cost_usd } }
}`;
  const BUDGETS_QUERY = `query DashboardBudgets {
  budgets { budgets { id scope subject model_id period limit_usd spent_usd reserved_usd remaining_usd resets_at } }
}`;
  const FEEDBACK_QUERY = `query DashboardFeedback($since: DateTimeISO!, $until: DateTimeISO!) {
  by_model: feedback_summary(group_by: model, since: $since, until: $until) { rows { group count mean_score thumbs_up thumbs_down corrections } }
  by_prompt: feedback_summary(group_by: prompt, since: $since, until: $until) { rows { group count mean_score thumbs_up thumbs_down corrections } }
}`;
  const EVALUATIONS_QUERY = `query DashboardEvaluations {
  evaluations(limit: 3) { evaluations {
    id name status created_at progress { total completed failed } scorers { name }
    variants { prompt { name version } model_id cases completed failed passed pass_rate mean_score scores
      mean_latency_ms p95_latency_ms total_tokens cost_usd cost_per_pass_usd }
    best { prompt { name version } model_id }
  } }
}`;

  const $ = (id) => document.getElementById(id);
  const rangeSelect = $('range');
  const sinceInput = $('since');
  const untilInput = $('until');
  const keyInput = $('api-key');
  const statusLine = $('status');

  // ---------------------------------------------------------------------------------------------
  // Small DOM and formatting helpers (text only: nothing from the API is parsed as HTML).

  function el(tag, className, children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
    }
    return node;
  }

  const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
  const formatCount = (value) =>
    value === null || value === undefined ? '–' : Math.abs(value) >= 10000 ? compact.format(value) : integer.format(value);
  /** Dollars to three significant digits (cents from $1 up): generations cost fractions of a cent. */
  function formatUsd(value) {
    if (value === null || value === undefined) return '–';
    if (value === 0) return '$0';
    if (Math.abs(value) >= 1) return `$${value.toFixed(2)}`;
    const digits = Math.min(12, Math.max(2, 2 - Math.floor(Math.log10(Math.abs(value)))));
    return `$${value.toFixed(digits).replace(/0+$/, '').replace(/\.$/, '')}`;
  }
  const formatMs = (value) => (value === null || value === undefined ? '–' : `${integer.format(value)} ms`);
  const formatRate = (value) => (value === null || value === undefined ? '–' : `${(value * 100).toFixed(0)}%`);
  const formatScore = (value) => (value === null || value === undefined ? '–' : value.toFixed(2));
  function formatDuration(seconds) {
    if (seconds % 86400 === 0) return `${seconds / 86400} d`;
    if (seconds % 3600 === 0) return `${seconds / 3600} h`;
    if (seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  }
  const colorOf = (index) => PALETTE[index % PALETTE.length];
  /** The line that sums the groups beyond the server's max_lines (folded_groups > 0): grey, after the others. */
  const OTHER_COLOR = '#9ca3af';
  const isFolded = (line) => line.folded_groups > 0;
  function lineLabel(line, grouping) {
    if (isFolded(line))
      return `${formatCount(line.folded_groups)} other ${grouping === 'caller' ? 'callers' : grouping === 'team' ? 'teams' : 'models'}`;
    if (line.group === '') return grouping === 'team' ? '(no team)' : '(none)';
    return line.group;
  }
  const lineColor = (line, index) => (isFolded(line) ? OTHER_COLOR : colorOf(index));

  function setStatus(state, message) {
    body.dataset.state = state;
    statusLine.textContent = message;
  }

  function panelBody(name) {
    return document.querySelector(`[data-chart="${name}"] .panel-body`);
  }

  /** Records how many data points a panel shows (the test and people read data-points). */
  function setPoints(name, points) {
    const panel = document.querySelector(`[data-chart="${name}"]`);
    panel.dataset.points = String(points);
    exposed.panels[name] = points;
  }

  function showMessage(name, className, message) {
    destroyChart(name);
    panelBody(name).replaceChildren(el('p', className, [message]));
    setPoints(name, 0);
  }

  // ---------------------------------------------------------------------------------------------
  // The time range.

  const pad = (value) => String(value).padStart(2, '0');
  const toLocalInput = (date) =>
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;

  function fillPreset() {
    if (rangeSelect.value === 'custom') return;
    const until = new Date();
    const since = new Date(until.getTime() - Number(rangeSelect.value) * 1000);
    sinceInput.value = toLocalInput(since);
    untilInput.value = toLocalInput(until);
  }

  /** [since, until) as Dates: a preset ends now (to the second); custom reads the inputs (local time). */
  function currentRange() {
    if (rangeSelect.value !== 'custom') {
      const until = new Date();
      return { since: new Date(until.getTime() - Number(rangeSelect.value) * 1000), until };
    }
    const since = new Date(sinceInput.value);
    const until = untilInput.value ? new Date(untilInput.value) : new Date();
    if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime())) throw new Error('Choose a start and an end for a custom range.');
    if (since.getTime() >= until.getTime()) throw new Error('The start of the range must be before its end.');
    return { since, until };
  }

  // ---------------------------------------------------------------------------------------------
  // GraphQL on this server.

  class GraphQLProblem extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  async function graphql(query, variables) {
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.authorization = `Bearer ${key}`;
    const response = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
      cache: 'no-store',
    });
    let answer;
    try {
      answer = await response.json();
    } catch {
      throw new GraphQLProblem('http_error', `The server answered HTTP ${response.status}.`);
    }
    if (answer.errors && answer.errors.length > 0) {
      const first = answer.errors[0];
      const code = first.extensions?.code || 'error';
      throw new GraphQLProblem(code, first.message || code);
    }
    return answer.data;
  }

  function describeProblem(error) {
    if (error instanceof GraphQLProblem) {
      if (error.code === 'unauthorized') return authEnabled ? 'Enter an admin API key above.' : 'The server asks for an API key.';
      if (error.code === 'forbidden') return 'This needs an admin key.';
      return `${error.message} (${error.code})`;
    }
    return error instanceof Error ? error.message : String(error);
  }

  // ---------------------------------------------------------------------------------------------
  // Charts.

  function destroyChart(name) {
    const chart = exposed.charts[name];
    if (chart) chart.destroy();
    delete exposed.charts[name];
  }

  function chartWidth(name) {
    return Math.max(280, panelBody(name).clientWidth - 4);
  }

  const axisValues = (format) => (_chart, values) => values.map((value) => (value === null ? '' : format(value)));
  /** Tick steps for counts: whole numbers only (1, 2, 5, 10, 20, 50, ...). */
  const WHOLE_STEPS = [];
  for (let power = 1; power <= 1e12; power *= 10) WHOLE_STEPS.push(power, 2 * power, 5 * power);

  /**
   * One uPlot chart: `lines` share the bucket starts `xs` (seconds); each has label, color, values
   * (one per bucket, null where there is nothing to draw) and optionally a dash.
   */
  function drawChart(name, xs, lines, format, whole) {
    destroyChart(name);
    const target = panelBody(name);
    target.replaceChildren();
    const points = lines.reduce((sum, line) => sum + line.values.filter((value) => value !== null && value !== 0).length, 0);
    if (lines.length === 0 || points === 0) {
      showMessage(name, 'empty', 'Nothing in this range.');
      return;
    }
    const options = {
      width: chartWidth(name),
      height: 230,
      scales: { x: { time: true } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [
        { stroke: '#6b7280', grid: { stroke: '#f3f4f6' } },
        { stroke: '#6b7280', grid: { stroke: '#f3f4f6' }, size: 72, values: axisValues(format), ...(whole ? { incrs: WHOLE_STEPS } : {}) },
      ],
      series: [
        {},
        ...lines.map((line) => ({
          label: line.label,
          stroke: line.color,
          width: 2,
          dash: line.dash,
          spanGaps: line.spanGaps === true,
          value: (_chart, value) => (value === null || value === undefined ? '–' : format(value)),
          points: { show: line.showPoints, size: 6, fill: line.color },
        })),
      ],
    };
    const chart = new uPlot(options, [xs, ...lines.map((line) => line.values)], target);
    exposed.charts[name] = chart;
    setPoints(name, points);
  }

  /** Values of one line aligned on the buckets: `pick(point)` where the group has a point, `empty` elsewhere. */
  function aligned(bucketIndex, count, points, pick, empty) {
    const values = new Array(count).fill(empty);
    for (const point of points) {
      const index = bucketIndex.get(Date.parse(point.start));
      if (index !== undefined) values[index] = pick(point);
    }
    return values;
  }

  function drawSeries(byModel, byCaller, byTeam) {
    const bucketIndex = new Map(byModel.buckets.map((start, index) => [Date.parse(start), index]));
    const xs = byModel.buckets.map((start) => Date.parse(start) / 1000);
    const count = xs.length;
    const sparse = (lines) => lines.every((line) => line.points.length <= 3);
    const linesOf = (series, grouping, pick, options) =>
      series.series.map((line, index) => ({
        label: lineLabel(line, grouping),
        color: lineColor(line, index),
        values: aligned(bucketIndex, count, line.points, pick, 0),
        showPoints: options?.showPoints || sparse(series.series),
      }));

    drawChart(
      'requests',
      xs,
      linesOf(byModel, 'model', (point) => point.requests),
      formatCount,
      true,
    );
    drawChart(
      'errors',
      xs,
      linesOf(byModel, 'model', (point) => point.failed),
      formatCount,
      true,
    );
    const latency = [];
    byModel.series.forEach((line, index) => {
      latency.push({
        label: `${lineLabel(line, 'model')} p50`,
        color: lineColor(line, index),
        values: aligned(bucketIndex, count, line.points, (point) => point.p50_latency_ms, null),
        spanGaps: true,
        showPoints: true,
      });
      latency.push({
        label: `${lineLabel(line, 'model')} p95`,
        color: lineColor(line, index),
        dash: [6, 4],
        values: aligned(bucketIndex, count, line.points, (point) => point.p95_latency_ms, null),
        spanGaps: true,
        showPoints: true,
      });
    });
    drawChart('latency', xs, latency, (value) => `${integer.format(value)}`);
    const groupings = { model: byModel, caller: byCaller, team: byTeam };
    for (const [grouping, series] of Object.entries(groupings)) {
      drawChart(
        `tokens-${grouping}`,
        xs,
        linesOf(series, grouping, (point) => point.total_tokens),
        formatCount,
        true,
      );
      drawChart(
        `spend-${grouping}`,
        xs,
        linesOf(series, grouping, (point) => point.cost_usd),
        formatUsd,
      );
    }

    // Every generation is on one line of byModel, the folded one included: the totals are exact.
    const totals = { requests: 0, failed: 0, tokens: 0, cost: 0 };
    for (const line of byModel.series) {
      for (const point of line.points) {
        totals.requests += point.requests;
        totals.failed += point.failed;
        totals.tokens += point.total_tokens;
        totals.cost += point.cost_usd;
      }
    }
    $('total-requests').textContent = formatCount(totals.requests);
    $('total-failed').textContent = formatCount(totals.failed);
    $('total-tokens').textContent = formatCount(totals.tokens);
    $('total-cost').textContent = formatUsd(totals.cost);
    $('bucket-width').textContent = formatDuration(byModel.bucket_seconds);
  }

  function clearTiles() {
    for (const id of ['total-requests', 'total-failed', 'total-tokens', 'total-cost', 'bucket-width']) $(id).textContent = '–';
  }

  // ---------------------------------------------------------------------------------------------
  // Budgets, feedback and evaluation runs.

  function barOf(fractions, className) {
    const bar = el('div', `bar${className ? ` ${className}` : ''}`);
    for (const [part, fraction] of fractions) {
      const segment = el('div', part);
      // CSSOM, not a style attribute: allowed by the page's style-src 'self'.
      segment.style.width = `${Math.max(0, Math.min(100, fraction * 100)).toFixed(2)}%`;
      bar.append(segment);
    }
    return bar;
  }

  function drawBudgets(budgets) {
    const target = panelBody('budgets');
    if (budgets.length === 0) {
      showMessage('budgets', 'empty', 'No budgets.');
      return;
    }
    target.replaceChildren(
      ...budgets.map((budget) => {
        const limit = budget.limit_usd;
        const spent = limit > 0 ? budget.spent_usd / limit : budget.spent_usd > 0 ? 1 : 0;
        const reserved = limit > 0 ? Math.min(1 - Math.min(spent, 1), budget.reserved_usd / limit) : 0;
        const used = spent + reserved;
        const name = [budget.scope, budget.subject, budget.model_id].filter((part) => part).join(' · ');
        const row = el('div', 'budget', [
          el('div', 'budget-label', [
            el('span', 'name', [`${name} (${budget.period})`]),
            el('span', 'figures', [
              `${formatUsd(budget.spent_usd)} spent + ${formatUsd(budget.reserved_usd)} reserved of ${formatUsd(limit)} · ${formatUsd(budget.remaining_usd)} left`,
            ]),
          ]),
          barOf(
            [
              ['spent', Math.min(spent, 1)],
              ['reserved', reserved],
            ],
            used >= 1 ? 'over' : used >= 0.8 ? 'warn' : '',
          ),
        ]);
        row.dataset.budgetId = budget.id;
        return row;
      }),
    );
    setPoints('budgets', budgets.length);
  }

  function drawFeedback(name, rows, emptyGroup) {
    const target = panelBody(name);
    if (rows.length === 0) {
      showMessage(name, 'empty', 'No feedback on generations of this range.');
      return;
    }
    const header = el('tr', '', [
      el('th', '', ['Group']),
      el('th', 'number', ['Pieces']),
      el('th', '', ['Mean score']),
      el('th', 'number', ['Up']),
      el('th', 'number', ['Down']),
      el('th', 'number', ['Corrected']),
    ]);
    const lines = rows.map((row) =>
      el('tr', '', [
        el('td', '', [row.group === '' ? emptyGroup : row.group]),
        el('td', 'number', [formatCount(row.count)]),
        el('td', '', [
          el('div', 'score', [
            row.mean_score === null ? null : barOf([['spent', row.mean_score]]),
            el('span', '', [formatScore(row.mean_score)]),
          ]),
        ]),
        el('td', 'number', [formatCount(row.thumbs_up)]),
        el('td', 'number', [formatCount(row.thumbs_down)]),
        el('td', 'number', [formatCount(row.corrections)]),
      ]),
    );
    target.replaceChildren(el('table', '', [el('thead', '', [header]), el('tbody', '', lines)]));
    setPoints(name, rows.length);
  }

  function drawEvaluations(runs) {
    const target = panelBody('evaluations');
    if (runs.length === 0) {
      showMessage('evaluations', 'empty', 'No evaluation runs yet.');
      return;
    }
    let variants = 0;
    const sameVariant = (left, right) =>
      right !== null &&
      left.model_id === right.model_id &&
      left.prompt.name === right.prompt.name &&
      left.prompt.version === right.prompt.version;
    const cards = runs.map((run) => {
      variants += run.variants.length;
      const columns = run.variants.map((variant) => ({ variant, best: sameVariant(variant, run.best) }));
      const head = el('tr', '', [
        el('th', '', ['']),
        ...columns.map(({ variant, best }) =>
          el('th', `variant${best ? ' best' : ''}`, [
            `${best ? '★ ' : ''}${variant.prompt.name}@${variant.prompt.version}`,
            el('span', 'model', [variant.model_id]),
          ]),
        ),
      ]);
      const row = (label, format) =>
        el('tr', '', [
          el('th', '', [label]),
          ...columns.map(({ variant, best }) => el('td', `number${best ? ' best' : ''}`, [format(variant)])),
        ]);
      const rows = [
        row('Pass rate', (variant) => formatRate(variant.pass_rate)),
        row('Passed / completed', (variant) => `${variant.passed} / ${variant.completed}`),
        row('Mean score', (variant) => formatScore(variant.mean_score)),
        ...run.scorers.map((scorer) =>
          row(`Score: ${scorer.name}`, (variant) => formatScore(variant.scores ? variant.scores[scorer.name] : null)),
        ),
        row('Failed cells', (variant) => formatCount(variant.failed)),
        row('Mean latency', (variant) => formatMs(variant.mean_latency_ms === null ? null : Math.round(variant.mean_latency_ms))),
        row('p95 latency', (variant) => formatMs(variant.p95_latency_ms)),
        row('Tokens', (variant) => formatCount(variant.total_tokens)),
        row('Cost', (variant) => formatUsd(variant.cost_usd)),
        row('Cost per pass', (variant) => formatUsd(variant.cost_per_pass_usd)),
      ];
      const card = el('article', 'run', [
        el('h3', '', [run.name || run.id, ' ', el('span', `status-${run.status}`, [run.status])]),
        el('div', 'meta', [
          `${run.id} · started ${new Date(run.created_at).toLocaleString()} · ${run.progress.completed}/${run.progress.total} cells, ${run.progress.failed} failed`,
        ]),
        el('table', '', [el('thead', '', [head]), el('tbody', '', rows)]),
      ]);
      card.dataset.evaluationId = run.id;
      return card;
    });
    target.replaceChildren(...cards);
    setPoints('evaluations', variants);
  }

  // ---------------------------------------------------------------------------------------------
  // Loading.

  let generation = 0;

  async function load() {
    const current = ++generation;
    let range;
    try {
      range = currentRange();
    } catch (error) {
      setStatus('error', describeProblem(error));
      return;
    }
    if (authEnabled && !sessionStorage.getItem(KEY_STORAGE)) {
      setStatus('needs-key', 'API keys are on: enter an admin API key to see the dashboard.');
      return;
    }
    setStatus('loading', 'Loading…');
    const variables = { since: range.since.toISOString(), until: range.until.toISOString() };
    const sections = [
      graphql(SERIES_QUERY, variables).then((data) => {
        if (current === generation) drawSeries(data.model, data.caller, data.team);
      }),
      graphql(BUDGETS_QUERY).then((data) => {
        if (current === generation) drawBudgets(data.budgets.budgets);
      }),
      graphql(FEEDBACK_QUERY, variables).then((data) => {
        if (current !== generation) return;
        drawFeedback('feedback-model', data.by_model.rows, '(none)');
        drawFeedback('feedback-prompt', data.by_prompt.rows, '(no prompt version)');
      }),
      graphql(EVALUATIONS_QUERY).then((data) => {
        if (current === generation) drawEvaluations(data.evaluations.evaluations);
      }),
    ];
    const panelsOf = [
      ['requests', 'errors', 'latency', 'tokens-model', 'tokens-caller', 'tokens-team', 'spend-model', 'spend-caller', 'spend-team'],
      ['budgets'],
      ['feedback-model', 'feedback-prompt'],
      ['evaluations'],
    ];
    const results = await Promise.allSettled(sections);
    if (current !== generation) return;
    exposed.loads += 1;
    const problems = [];
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') return;
      const message = describeProblem(result.reason);
      problems.push({ code: result.reason?.code, message });
      for (const name of panelsOf[index]) showMessage(name, 'problem', message);
      if (index === 0) clearTiles();
    });
    const shown = `${range.since.toLocaleString()} – ${range.until.toLocaleString()}`;
    if (problems.length === 0) {
      setStatus('ready', `Showing ${shown}. Updated ${new Date().toLocaleTimeString()}.`);
    } else if (problems.some((problem) => problem.code === 'unauthorized')) {
      setStatus('needs-key', authEnabled ? 'That key was not accepted: enter an admin API key.' : 'The server asks for an API key.');
    } else {
      setStatus(
        problems.length === results.length ? 'error' : 'partial',
        `Showing ${shown}; ${[...new Set(problems.map((p) => p.message))].join(' ')}`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring.

  $('range-form').addEventListener('submit', (event) => {
    event.preventDefault();
    fillPreset();
    load();
  });
  rangeSelect.addEventListener('change', () => {
    fillPreset();
    load();
  });
  for (const input of [sinceInput, untilInput]) {
    input.addEventListener('change', () => {
      rangeSelect.value = 'custom';
    });
  }
  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    keyInput.value = '';
    keyInput.placeholder = key ? 'key set for this tab' : 'kept in this tab only';
    load();
  });
  $('forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORAGE);
    keyInput.placeholder = 'kept in this tab only';
    for (const name of Object.keys(exposed.charts)) destroyChart(name);
    for (const panel of document.querySelectorAll('[data-chart]')) showMessage(panel.dataset.chart, 'empty', '');
    clearTiles();
    load();
  });

  // Charts follow their panel's width.
  let resizeTimer;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [name, chart] of Object.entries(exposed.charts)) chart.setSize({ width: chartWidth(name), height: 230 });
    }, 100);
  });

  if (authEnabled && sessionStorage.getItem(KEY_STORAGE)) keyInput.placeholder = 'key set for this tab';
  fillPreset();
  load();
})();
