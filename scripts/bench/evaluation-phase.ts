/**
 * The gateway bench's evaluation phase (issue 14): does a 1,000-cell evaluation run slow down
 * interactive traffic on the same gateway? `EVAL_CONCURRENCY` (default 4) bounds the cells in flight
 * per process; the floor is that interactive REST generate p50, one request at a time, rises by at most
 * 20% while a run goes.
 *
 * One fresh gateway (ledger on, SQLite in a DATA_DIR of its own, EVAL_CONCURRENCY unset) serves two
 * models: the interactive bench model on the bench's lean upstream, and an evaluation model on a second
 * fake upstream that answers after `delayMs` (a timer: the upstream spends no CPU waiting), so a cell
 * takes as long as a fast real model would and a run lasts through a round instead of ending in a
 * second. A prompt with one `{{word}}` and a dataset of 1,000 cases make each run 1 prompt x 1 model =
 * 1,000 cells, scored by a `contains` scorer. Rounds alternate on that one gateway: with a run going
 * (started for the round, a new one started whenever one ends, cancelled after the round) and with none.
 * The median p50 of each side counts; the run's cells/s and the gateway's CPU show how much work the
 * run was.
 */
import { writeFileSync } from 'node:fs';
import { formatCount, formatMs, formatPercent, heading, line, unexpectedOutcomes, type Floor } from './report';
import type { LoadResult, LoadTarget } from './load-generator';
import { sendRequest, startFakeUpstream, type RunningGateway } from './processes';

export interface EvaluationPhaseSettings {
  /** Where the gateway and the evaluation model's upstream run. */
  readonly core: number;
  /** How long the evaluation model's upstream waits before each answer. */
  readonly delayMs: number;
  /** With/without pairs; the median of each side counts. */
  readonly rounds: number;
  readonly durations: { readonly warmUp: number; readonly freshWarmUp: number; readonly latency: number };
  readonly headers: Readonly<Record<string, string>>;
  /** The catalog's file for this phase, written here: both models. */
  readonly catalogPath: string;
  /** The bench's lean upstream and the interactive model it serves. */
  readonly upstreamUrl: string;
  readonly interactiveModelId: string;
  /** Starts a fresh gateway with these variables over the bench's environment (this phase passes DATA_DIR and MODEL_CATALOG). */
  launch(extra: Record<string, string>): Promise<RunningGateway>;
  stop(gateway: RunningGateway): Promise<void>;
  load(target: LoadTarget, connections: number, seconds: number): Promise<LoadResult>;
  restGenerate(gateway: RunningGateway): LoadTarget;
  checkGenerateWorks(gateway: RunningGateway): Promise<void>;
  /** A directory of its own for the gateway's DATA_DIR (created by the caller). */
  readonly dataDirectory: string;
}

const evaluationModelId = 'bench-eval-model';
const promptName = 'bench-eval';
const caseCount = 1000;
/** How often the bench looks at the run (and starts another when it has ended). */
const runPollMs = 1000;
/** The floor of issue 14: interactive p50 with a run going over the p50 without. */
const maxP50Ratio = 1.2;
const loadConnections = 10;

interface EvaluationView {
  readonly id: string;
  readonly status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  readonly progress: { readonly total: number; readonly completed: number; readonly failed: number };
  readonly error: string | null;
}

const ended = (run: EvaluationView): boolean => run.status !== 'queued' && run.status !== 'running';

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** JSON from the gateway's REST API, or an error naming the call and its answer. */
async function callJson<T>(
  gateway: RunningGateway,
  headers: Readonly<Record<string, string>>,
  method: 'GET' | 'POST',
  route: string,
  expected: readonly number[],
  body?: unknown,
): Promise<{ status: number; value: T }> {
  const url = `${gateway.url}/api/v1${route}`;
  const answer = await sendRequest(url, { method, headers: { ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!expected.includes(answer.status)) throw new Error(`${method} ${url} answered HTTP ${answer.status}: ${answer.body.slice(0, 500)}`);
  return { status: answer.status, value: JSON.parse(answer.body) as T };
}

/**
 * Keeps one evaluation run going on a gateway: starts one, looks at it every `runPollMs`, and starts
 * another as soon as it has ended; `stop` cancels the current one and waits until it has ended.
 * Counts the cells its runs finished and the runs it started; a failed run or a failed cell is a problem.
 */
class RunKeeper {
  private current: EvaluationView | undefined;
  /** Cells finished by runs that have ended. */
  private endedCells = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  /** Serialises looks at the run, so that an ended run is replaced once. */
  private turn: Promise<unknown> = Promise.resolve();
  runsStarted = 0;
  runsCompleted = 0;
  readonly problems: string[] = [];

  constructor(
    private readonly gateway: RunningGateway,
    private readonly headers: Readonly<Record<string, string>>,
    private readonly startBody: unknown,
  ) {}

  /** Starts a run and waits until its first cell is recorded: from then on a run is going. */
  async start(): Promise<void> {
    this.running = true;
    await this.startRun();
    for (;;) {
      const total = await this.cellsDone();
      if (total > 0) break;
      await pause(20);
    }
    this.loop = (async () => {
      while (this.running) {
        await pause(runPollMs);
        if (this.running) await this.cellsDone();
      }
    })();
  }

  /** Cells finished by every run this keeper started; starts a new run if the current one has ended. */
  cellsDone(): Promise<number> {
    const next = this.turn.then(() => this.look());
    this.turn = next.catch(() => undefined);
    return next;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.turn;
    const run = this.current;
    if (!run) return;
    const cancel = await callJson<EvaluationView>(this.gateway, this.headers, 'POST', `/evaluations/${run.id}/cancel`, [200, 409]);
    // 409: it ended on its own in the meantime.
    let view = cancel.status === 200 ? cancel.value : await this.read(run.id);
    while (!ended(view)) {
      await pause(20);
      view = await this.read(run.id);
    }
    this.account(view);
    this.current = undefined;
  }

  private async look(): Promise<number> {
    if (!this.current) return this.endedCells;
    const view = await this.read(this.current.id);
    if (!ended(view)) {
      this.current = view;
      return this.endedCells + view.progress.completed;
    }
    this.account(view);
    this.current = undefined;
    if (this.running) await this.startRun();
    return this.endedCells;
  }

  private account(view: EvaluationView): void {
    this.endedCells += view.progress.completed;
    if (view.status === 'succeeded') this.runsCompleted += 1;
    if (view.status === 'failed') this.problems.push(`run ${view.id} failed: ${view.error ?? 'no error given'}`);
    if (view.progress.failed > 0) this.problems.push(`run ${view.id}: ${view.progress.failed} cells failed`);
  }

  private async startRun(): Promise<void> {
    const started = await callJson<EvaluationView>(this.gateway, this.headers, 'POST', '/evaluations', [202], this.startBody);
    if (started.value.progress.total !== caseCount) {
      throw new Error(`the run has ${started.value.progress.total} cells, not ${caseCount}`);
    }
    this.current = started.value;
    this.runsStarted += 1;
  }

  private async read(id: string): Promise<EvaluationView> {
    return (await callJson<EvaluationView>(this.gateway, this.headers, 'GET', `/evaluations/${id}`, [200])).value;
  }
}

/** One measured window: interactive latency, the gateway's CPU, and the cells the run finished meanwhile. */
interface Window {
  readonly result: LoadResult;
  readonly cpuSeconds: number;
  readonly cells: number;
}

export async function runEvaluationPhase(settings: EvaluationPhaseSettings): Promise<Floor[]> {
  const { durations, headers } = settings;
  heading('A 1,000-cell evaluation run going vs none (one gateway, ledger on, EVAL_CONCURRENCY default): REST generate, 1 connection');
  const evaluationUpstream = await startFakeUpstream(settings.core, { modelId: evaluationModelId, delayMs: settings.delayMs });
  const problems: string[] = [];
  try {
    writeFileSync(
      settings.catalogPath,
      JSON.stringify({
        endpoints: [
          { name: 'bench', base_url: `${settings.upstreamUrl}/v1` },
          { name: 'bench-eval', base_url: `${evaluationUpstream.url}/v1` },
        ],
        models: [
          { id: settings.interactiveModelId, provider: 'bench', context_length: 8192 },
          { id: evaluationModelId, provider: 'bench-eval', context_length: 8192 },
        ],
      }),
    );
    const gateway = await settings.launch({ MODEL_CATALOG: settings.catalogPath, DATA_DIR: settings.dataDirectory });
    line('start to ready', formatMs(gateway.startToReadyMs));
    await settings.checkGenerateWorks(gateway);

    await callJson(gateway, headers, 'POST', '/prompts', [201], {
      name: promptName,
      template: 'Say hello to {{word}}',
      model_id: evaluationModelId,
    });
    // 1,000 cases of ~60 bytes: one create, far below MAX_BODY_BYTES (a bigger dataset would append in parts).
    const items = Array.from({ length: caseCount }, (_, index) => ({ variables: { word: `word ${index}` }, expected: 'bench' }));
    const dataset = await callJson<{ id: string; item_count: number }>(gateway, headers, 'POST', '/datasets', [201], {
      name: 'bench cases',
      items,
    });
    if (dataset.value.item_count !== caseCount) throw new Error(`the dataset holds ${dataset.value.item_count} cases, not ${caseCount}`);
    const startBody = {
      name: 'bench run',
      dataset_id: dataset.value.id,
      prompts: [{ name: promptName }],
      model_ids: [evaluationModelId],
      scorers: [{ type: 'contains', value: 'bench' }],
    };
    line(
      'evaluation',
      `${caseCount.toLocaleString('en-US')} cases x 1 prompt x 1 model = ${caseCount.toLocaleString('en-US')} cells a run; ` +
        `${evaluationModelId} on a fake upstream answering after ${settings.delayMs} ms (core ${settings.core})`,
    );

    const interactive = settings.restGenerate(gateway);
    const keeper = new RunKeeper(gateway, headers, startBody);
    // A fresh process: both paths warm (interactive generate alongside a run) before any figure.
    await keeper.start();
    problems.push(
      ...unexpectedOutcomes(await settings.load(interactive, loadConnections, settings.durations.freshWarmUp)).map((p) => `warm-up: ${p}`),
    );
    await keeper.stop();

    const measure = async (withRun: boolean): Promise<Window> => {
      if (withRun) await keeper.start();
      const tag = withRun ? 'with a run' : 'no run';
      problems.push(...unexpectedOutcomes(await settings.load(interactive, 1, durations.warmUp)).map((p) => `${tag} warm-up: ${p}`));
      const cellsBefore = withRun ? await keeper.cellsDone() : 0;
      const cpuBefore = gateway.cpuSeconds();
      const result = await settings.load(interactive, 1, durations.latency);
      const cpuSeconds = gateway.cpuSeconds() - cpuBefore;
      const cells = withRun ? (await keeper.cellsDone()) - cellsBefore : 0;
      problems.push(...unexpectedOutcomes(result).map((p) => `${tag}: ${p}`));
      if (withRun) await keeper.stop();
      return { result, cpuSeconds, cells };
    };
    const withRun: Window[] = [];
    const idle: Window[] = [];
    for (let round = 0; round < settings.rounds; round += 1) {
      withRun.push(await measure(true));
      idle.push(await measure(false));
    }
    problems.push(...keeper.problems);

    const p = (windows: readonly Window[], quantile: 'p50' | 'p99'): number =>
      median(windows.map((window) => window.result.latencyMs[quantile]));
    const cpuShare = (windows: readonly Window[]): number =>
      windows.reduce((sum, window) => sum + window.cpuSeconds, 0) / windows.reduce((sum, window) => sum + window.result.seconds, 0);
    const measuredSeconds = withRun.reduce((sum, window) => sum + window.result.seconds, 0);
    const cells = withRun.reduce((sum, window) => sum + window.cells, 0);
    const ratio = p(withRun, 'p50') / p(idle, 'p50');
    line(
      'with a run going',
      `p50 ${formatMs(p(withRun, 'p50'))}, p99 ${formatMs(p(withRun, 'p99'))} (median of ${settings.rounds} rounds)`,
    );
    line('no run going', `p50 ${formatMs(p(idle, 'p50'))}, p99 ${formatMs(p(idle, 'p99'))}`);
    const byRound = withRun.map(
      (window, round) => `${formatMs(window.result.latencyMs.p50)} / ${formatMs(idle[round]!.result.latencyMs.p50)}`,
    );
    line('p50 by round (with / without)', byRound.join(', '));
    line('with / without', `p50 x${ratio.toFixed(2)}, p99 x${(p(withRun, 'p99') / p(idle, 'p99')).toFixed(2)}`);
    line(
      'the run',
      `${(cells / measuredSeconds).toFixed(1)} cells/s while measured (${formatCount(cells)} cells in ${measuredSeconds.toFixed(1)} s); ` +
        `${keeper.runsStarted} runs started, ${keeper.runsCompleted} ran to the end`,
    );
    // What a cell costs the gateway, roughly: the CPU of the rounds with a run, less what their interactive calls cost at
    // the idle rounds' rate (it also holds the bench's looks at the run, one a second, and the runs' starts and cancels).
    const sum = (windows: readonly Window[], pick: (window: Window) => number): number =>
      windows.reduce((total, window) => total + pick(window), 0);
    const cpuPerInteractive = sum(idle, (window) => window.cpuSeconds) / sum(idle, (window) => window.result.responses);
    const cpuPerCell =
      (sum(withRun, (window) => window.cpuSeconds) - sum(withRun, (window) => window.result.responses) * cpuPerInteractive) / cells;
    line(
      'gateway CPU',
      `${formatPercent(cpuShare(withRun))} of a core with the run, ${formatPercent(cpuShare(idle))} without (interactive included); ` +
        `~${Math.round(cpuPerCell * 1e6)} µs per cell, ${Math.round(cpuPerInteractive * 1e6)} µs per interactive generate`,
    );
    line(
      'interactive generate, 1 connection',
      `${formatCount(sum(withRun, (window) => window.result.succeeded) / measuredSeconds)} requests/s with the run, ` +
        `${formatCount(sum(idle, (window) => window.result.succeeded) / sum(idle, (window) => window.result.seconds))} without`,
    );
    await settings.stop(gateway);

    return [
      {
        name: 'interactive generate p50 with a 1,000-cell evaluation run going <= 1.2x the idle p50',
        measured: `x${ratio.toFixed(2)} (${formatMs(p(withRun, 'p50'))} vs ${formatMs(p(idle, 'p50'))}; ${(cells / measuredSeconds).toFixed(1)} cells/s)`,
        limit: `<= ${maxP50Ratio.toFixed(2)}x`,
        pass: ratio <= maxP50Ratio,
      },
      {
        name: 'evaluation phase answers all 200, no run or cell failed',
        measured: problems.length === 0 ? 'no errors' : problems.join('; '),
        limit: 'no non-200 or socket error; runs and cells succeed',
        pass: problems.length === 0,
      },
    ];
  } finally {
    await evaluationUpstream.stop();
  }
}
