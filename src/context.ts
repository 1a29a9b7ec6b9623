import type { RequestLog } from './monitoring/request-log';
import type { CallContext } from './pipeline/call-context';
import type { Caller } from './pipeline/caller';
import { ClientAbort } from './pipeline/client-abort';
import type { GenerationPipeline } from './pipeline/generation-pipeline';
import { createGenerationLoader } from './pipeline/generation-loader';
import type { BudgetService } from './services/budget.service';
import type { CompareService } from './services/compare.service';
import type { DashboardService } from './services/dashboard.service';
import type { DatasetService } from './services/dataset.service';
import type { EvaluationService } from './services/evaluation.service';
import type { FeedbackService } from './services/feedback.service';
import type { LedgerService } from './services/ledger.service';
import type { ModelService } from './services/model.service';
import type { PromptService } from './services/prompt.service';
import type { SystemStatusService } from './services/system-status.service';

export interface Services {
  readonly generation: GenerationPipeline;
  readonly models: ModelService;
  readonly ledger: LedgerService;
  readonly budgets: BudgetService;
  readonly feedback: FeedbackService;
  readonly compare: CompareService;
  readonly prompts: PromptService;
  readonly datasets: DatasetService;
  readonly evaluations: EvaluationService;
  readonly status: SystemStatusService;
  /** The dashboard's time series (GET /dashboard). */
  readonly dashboard: DashboardService;
}

/** Everything a resolver may use for one request: the pipeline's call context plus the services. */
export interface RequestContext extends CallContext {
  readonly services: Services;
  /** Headers resolvers add to the HTTP response (rate-limit figures); the HTTP layer writes them. */
  readonly responseHeaders: Map<string, string>;
  /** What the request ran, for its access-log line and metrics (a WebSocket operation's is its upgrade's; absent without a monitor). */
  readonly requestLog?: RequestLog;
}

export function createRequestContext(
  services: Services,
  requestId: string,
  caller: Caller,
  cancelledBy?: AbortSignal | ClientAbort,
  requestLog?: RequestLog,
): RequestContext {
  return new HttpRequestContext(services, requestId, caller, cancelledBy, requestLog);
}

/** A class, so that every request's context has one hidden class, its AbortSignal made only when read. */
class HttpRequestContext implements RequestContext {
  readonly responseHeaders = new Map<string, string>();
  readonly generationLoader = createGenerationLoader();
  readonly clientAbort: ClientAbort | undefined;
  private readonly givenSignal: AbortSignal | undefined;

  constructor(
    readonly services: Services,
    readonly requestId: string,
    readonly caller: Caller,
    cancelledBy: AbortSignal | ClientAbort | undefined,
    readonly requestLog: RequestLog | undefined,
  ) {
    this.clientAbort = cancelledBy instanceof ClientAbort ? cancelledBy : undefined;
    this.givenSignal = cancelledBy instanceof ClientAbort ? undefined : cancelledBy;
  }

  get signal(): AbortSignal | undefined {
    return this.clientAbort ? this.clientAbort.signal : this.givenSignal;
  }
}
