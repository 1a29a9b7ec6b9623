import type { Counter, Histogram, Registry } from 'prom-client';
import type { BreakerState } from '../pipeline/routing/circuit-breaker';
import type { GenerationRecord } from '../pipeline/generation-record';

/** What the metrics read when scraped, rather than being told on every change. */
export interface MetricsSources {
  /** HTTP requests being served now. */
  readonly inFlightRequests: () => number;
  /** Every endpoint (provider) with its queue and breaker. */
  readonly endpoints: () => ReadonlyArray<{ readonly name: string; readonly queued: number; readonly breaker: BreakerState }>;
}

export type RefusalReason = 'rate_limit' | 'budget';

const breakerValue: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };
/** Model ids are bounded by the catalog and what endpoints list; past this many, more count as `other`. */
const maxModelLabels = 500;
const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The gateway's Prometheus metrics, in a registry of its own. Every label value comes from a bounded set
 * (route templates, model ids the gateway routed to, endpoint names, status codes), never from callers,
 * prompts or raw paths, so no request can grow the number of series. prom-client (~80 ms to load) is
 * loaded on first use, not at start-up.
 */
export class GatewayMetrics {
  private instruments: Instruments | undefined;
  private readonly models = new Set<string>();

  constructor(private readonly sources: MetricsSources) {}

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const labels = { route, method: boundedMethod(method), status: String(status) };
    const { httpRequests, httpDuration } = this.loaded();
    httpRequests.inc(labels);
    // A WebSocket's 101 lasts as long as its connection (minutes, hours): counted, not timed, or it would
    // swamp the route's latency quantiles.
    if (status !== 101) httpDuration.observe(labels, seconds);
  }

  observeGeneration(record: GenerationRecord): void {
    const { generations, unrecorded, tokens, cost, upstreamDuration, firstToken } = this.loaded();
    const model = this.modelLabel(record.modelId);
    generations.inc({ model, provider: record.provider, source: record.source, status: record.status });
    if (!record.inLedger) unrecorded.inc({ model });
    tokens.inc({ model, direction: 'input' }, record.inputTokens);
    tokens.inc({ model, direction: 'output' }, record.outputTokens);
    cost.inc({ model }, record.costUsd.total);
    if (record.status === 'succeeded') upstreamDuration.observe({ model }, record.latencyMs / 1000);
    if (record.timeToFirstTokenMs !== undefined) firstToken.observe({ model }, record.timeToFirstTokenMs / 1000);
  }

  refused(reason: RefusalReason): void {
    this.loaded().refusals.inc({ reason });
  }

  evaluationCell(status: 'passed' | 'failed' | 'error'): void {
    this.loaded().evaluationCells.inc({ status });
  }

  get contentType(): string {
    return this.loaded().registry.contentType;
  }

  /** The gateway's metrics and Node's process metrics (memory, CPU, event loop lag, GC). */
  render(): Promise<string> {
    const { registry } = this.loaded();
    return promClient().Registry.merge([processMetrics(), registry]).metrics();
  }

  private loaded(): Instruments {
    this.instruments ??= createInstruments(this.sources);
    return this.instruments;
  }

  private modelLabel(modelId: string): string {
    if (this.models.has(modelId)) return modelId;
    if (this.models.size >= maxModelLabels) return 'other';
    this.models.add(modelId);
    return modelId;
  }
}

type PromClient = typeof import('prom-client');
const promClient = (): PromClient => require('prom-client') as PromClient;

interface Instruments {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route' | 'method' | 'status'>;
  readonly generations: Counter<'model' | 'provider' | 'source' | 'status'>;
  readonly unrecorded: Counter<'model'>;
  readonly tokens: Counter<'model' | 'direction'>;
  readonly cost: Counter<'model'>;
  readonly upstreamDuration: Histogram<'model'>;
  readonly firstToken: Histogram<'model'>;
  readonly refusals: Counter<'reason'>;
  readonly evaluationCells: Counter<'status'>;
}

function createInstruments(sources: MetricsSources): Instruments {
  const { Counter, Gauge, Histogram, Registry } = promClient();
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'llmop_in_flight_requests',
    help: 'HTTP requests being served.',
    registers,
    collect() {
      this.set(sources.inFlightRequests());
    },
  });
  new Gauge({
    name: 'llmop_endpoint_queue_depth',
    help: "Calls waiting for one of an endpoint's connection slots.",
    labelNames: ['endpoint'] as const,
    registers,
    collect() {
      for (const endpoint of sources.endpoints()) this.set({ endpoint: endpoint.name }, endpoint.queued);
    },
  });
  new Gauge({
    name: 'llmop_breaker_state',
    help: "An endpoint's circuit breaker: 0 closed, 1 half-open, 2 open.",
    labelNames: ['endpoint'] as const,
    registers,
    collect() {
      for (const endpoint of sources.endpoints()) this.set({ endpoint: endpoint.name }, breakerValue[endpoint.breaker]);
    },
  });
  return {
    registry,
    httpRequests: new Counter({
      name: 'llmop_http_requests_total',
      help: 'HTTP requests answered, by route template, method and status.',
      labelNames: ['route', 'method', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'llmop_http_request_duration_seconds',
      help: 'Time from a request to its response closing, by route template, method and status.',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: latencyBuckets,
      registers,
    }),
    generations: new Counter({
      name: 'llmop_generations_total',
      help: 'Generations that ended (succeeded, failed or cancelled), by model, serving provider, source and status.',
      labelNames: ['model', 'provider', 'source', 'status'] as const,
      registers,
    }),
    unrecorded: new Counter({
      name: 'llmop_unrecorded_generations_total',
      help: 'Generations whose ledger row could not be committed (the caller got 503 ledger_unavailable), by model: spend the ledger does not show.',
      labelNames: ['model'] as const,
      registers,
    }),
    tokens: new Counter({
      name: 'llmop_tokens_total',
      help: "Tokens of ended generations, by model and direction (input or output); a failed one's input tokens count, at no cost.",
      labelNames: ['model', 'direction'] as const,
      registers,
    }),
    cost: new Counter({
      name: 'llmop_cost_usd_total',
      help: 'Cost of generations in US dollars, by model.',
      labelNames: ['model'] as const,
      registers,
    }),
    upstreamDuration: new Histogram({
      name: 'llmop_upstream_duration_seconds',
      help: "Time a succeeded generation spent at the provider that served it (its last attempt, stream or not, waiting for the endpoint's slot included), by model.",
      labelNames: ['model'] as const,
      buckets: latencyBuckets,
      registers,
    }),
    firstToken: new Histogram({
      name: 'llmop_time_to_first_token_seconds',
      help: 'Time from the pipeline taking a stream (its budget hold, ledger row and routing included; the rate limit runs before) to its first text, by model.',
      labelNames: ['model'] as const,
      buckets: latencyBuckets,
      registers,
    }),
    refusals: new Counter({
      name: 'llmop_refusals_total',
      help: 'Requests refused before any upstream call, by reason (rate_limit or budget).',
      labelNames: ['reason'] as const,
      registers,
    }),
    evaluationCells: new Counter({
      name: 'llmop_evaluation_cells_total',
      help: 'Evaluation cells finished, by status (passed, failed: scored below its threshold, error: no answer).',
      labelNames: ['status'] as const,
      registers,
    }),
  };
}

let processRegistry: Registry | undefined;

/**
 * Node's default metrics, collected once per process from the first scrape: their collectors (a GC
 * observer, an event-loop delay monitor) are process-wide, and a process may run several gateways (tests).
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    const { Registry, collectDefaultMetrics } = promClient();
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const boundedMethod = (method: string): string => (knownMethods.has(method) ? method : 'other');
