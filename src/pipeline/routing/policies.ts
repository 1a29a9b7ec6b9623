import { ProviderError } from '../../providers/provider';
import { sleep } from '../abortable-sleep';
import type { Deadline } from '../deadline';
import type { BreakerPermit } from './circuit-breaker';
import type { Endpoints } from './endpoints';
import type { Candidate, RoutePlan } from './router';

export interface RetryPolicy {
  /** Retries per endpoint after its first attempt, for errors the provider marks retryable. */
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** The longest upstream Retry-After waited for; a longer one moves on to the next endpoint at once. */
  readonly retryAfterMaxMs: number;
  /** One attempt's limit (a stream's: until it starts), so a stalled endpoint leaves time for the next; 0: none. */
  readonly attemptTimeoutMs: number;
  /** In [0, 1); injectable so tests can pin the jitter. */
  readonly random: () => number;
}

/** One upstream call that failed, as the ledger and the answer's `attempts` keep it. */
export interface FailedAttempt {
  readonly candidate: Candidate;
  readonly error: unknown;
  readonly latencyMs: number;
}

/** How a served call ended, as far as its endpoint's health is concerned. */
export type CallEnd = 'succeeded' | 'failed' | 'abandoned';

/** The call that answered, and what it took to get there. */
export interface Served<T> {
  readonly value: T;
  readonly candidate: Candidate;
  readonly failures: readonly FailedAttempt[];
  /** performance.now() when the serving attempt began (after the failed ones): what its latency is measured from. */
  readonly startedAt: number;
  /**
   * Ends the call: tells its endpoint's breaker how it went and stops counting it in flight. A whole
   * answer ends as it arrives; a stream when it ends (a failure after its start counts against the
   * endpoint too). Only the first call counts.
   */
  readonly end: (how: CallEnd) => void;
}

/** No candidate answered: the error that decides what the caller sees, and every failed attempt. */
export class RoutingFailed extends Error {
  override readonly name = 'RoutingFailed';
  constructor(
    /** Undefined when no attempt was made: every endpoint's breaker was open. */
    readonly lastError: unknown,
    readonly failures: readonly FailedAttempt[],
    /** When every endpoint was skipped by its breaker: how soon the first will let a probe through. */
    readonly breakersOpenForMs?: number,
  ) {
    super('no endpoint answered', { cause: lastError });
  }
}

/** Raised in place of the provider's own error when an attempt ran out of its own time (not the request's). */
export class AttemptTimedOut extends ProviderError {
  constructor(endpointName: string, timeoutMs: number, cause: unknown) {
    super(`${endpointName} did not answer within the attempt's ${timeoutMs} ms`, { kind: 'timeout', isRetryable: true, cause });
  }
}

/** After a failed attempt: stop trying, move to the next candidate, or retry this one after a delay. */
type NextStep = { readonly step: 'stop' } | { readonly step: 'next' } | { readonly step: 'retry'; readonly delayMs: number };

/**
 * The routing policies, the one layer that retries. Each model's replicas in turn (least busy first,
 * ordered when reached), then each fallback's; an endpoint whose breaker is open is skipped at once.
 * On an endpoint, up to `maxRetries` retries of a retryable failure with exponential backoff and full
 * jitter (at least the upstream's Retry-After, when that is under the cap), never past the deadline;
 * then the next candidate. A request error (400-class) stops everything: no fallback would take it
 * either. `call` gets the attempt's signal and must settle when it aborts.
 */
export async function callThroughPolicies<T>(
  plan: RoutePlan,
  endpoints: Endpoints,
  policy: RetryPolicy,
  deadline: Deadline,
  call: (candidate: Candidate, signal: AbortSignal) => Promise<T>,
): Promise<Served<T>> {
  const failures: FailedAttempt[] = [];
  let lastError: unknown;
  let skippedOpenMs: number | undefined;
  for (const group of plan.groups) {
    for (const candidate of endpoints.leastBusyFirst(group.modelId, group.replicas)) {
      const { endpoint } = candidate;
      for (let attempt = 1; ; attempt += 1) {
        if (deadline.signal.aborted) throw new RoutingFailed(lastError ?? deadline.signal.reason, failures);
        const permit = endpoint.breaker.tryAcquire();
        if (!permit) {
          skippedOpenMs = Math.min(skippedOpenMs ?? Number.POSITIVE_INFINITY, endpoint.breaker.retryInMs);
          break;
        }
        const ended = endpoint.started();
        const limit = new AttemptLimit(deadline, policy.attemptTimeoutMs);
        const startedAt = performance.now();
        try {
          const value = await call(candidate, limit.signal);
          limit.started();
          return { value, candidate, failures, startedAt, end: endOnce(permit, ended) };
        } catch (thrown) {
          ended();
          limit.failed();
          const error = limit.timedOut ? new AttemptTimedOut(endpoint.name, policy.attemptTimeoutMs, thrown) : thrown;
          failures.push({ candidate, error, latencyMs: Math.round(performance.now() - startedAt) });
          lastError = error;
          const next = nextStep(error, attempt, permit, policy, deadline);
          if (next.step === 'stop') throw new RoutingFailed(error, failures);
          // A failure that opened the breaker leaves nothing to wait for here.
          if (next.step === 'next' || endpoint.breaker.state !== 'closed') break;
          await sleep(next.delayMs, deadline.signal);
        }
      }
    }
  }
  const neverTried = failures.length === 0;
  throw new RoutingFailed(lastError, failures, neverTried ? (skippedOpenMs ?? 0) : undefined);
}

/**
 * Settles the breaker's permit with what the failure says about the endpoint, and picks what to do next.
 * Against the endpoint count: refused or reset connections, timeouts, malformed answers, 5xx, and
 * refused credentials. Not against it: request errors and other 4xx (it answered), 429 (rate limits are
 * per model and per key, and Retry-After handles them), a full queue (load), a client that left.
 */
function nextStep(error: unknown, attempt: number, permit: BreakerPermit, policy: RetryPolicy, deadline: Deadline): NextStep {
  const saturated = error instanceof ProviderError && error.kind === 'saturated';
  if (deadline.signal.aborted) {
    // The deadline passed while the endpoint was answering: it was too slow.
    if (deadline.expired && !saturated) permit.failed();
    else permit.abandoned();
    return { step: 'stop' };
  }
  if (!(error instanceof ProviderError)) {
    permit.abandoned();
    return { step: 'stop' };
  }
  if (saturated) {
    permit.abandoned();
    return { step: 'next' };
  }
  if (error.kind === 'invalid_request') {
    permit.succeeded();
    return { step: 'stop' };
  }
  const status = error.statusCode;
  const answered4xx = status !== undefined && status >= 400 && status < 500 && status !== 408;
  if (status === 429) permit.abandoned();
  else if (answered4xx && status !== 401 && status !== 403) permit.succeeded();
  else permit.failed();
  if (!error.isRetryable || attempt > policy.maxRetries) return { step: 'next' };
  if (error.retryAfterMs !== undefined && error.retryAfterMs > policy.retryAfterMaxMs) return { step: 'next' };
  const backoffMs = policy.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const delayMs = Math.max(backoffMs, error.retryAfterMs ?? 0);
  return delayMs >= deadline.remainingMs ? { step: 'next' } : { step: 'retry', delayMs };
}

function endOnce(permit: BreakerPermit, ended: () => void): (how: CallEnd) => void {
  let done = false;
  return (how) => {
    if (done) return;
    done = true;
    ended();
    if (how === 'succeeded') permit.succeeded();
    else if (how === 'failed') permit.failed();
    else permit.abandoned();
  };
}

/**
 * One attempt's signal: the deadline's, or, with an attempt timeout shorter than what is left, one
 * that also aborts when the attempt's own time runs out (until the call has started).
 */
class AttemptLimit {
  readonly signal: AbortSignal;
  private timer: NodeJS.Timeout | undefined;
  private expired = false;
  private readonly unlink: () => void = () => undefined;

  constructor(deadline: Deadline, timeoutMs: number) {
    if (timeoutMs <= 0 || timeoutMs >= deadline.remainingMs) {
      this.signal = deadline.signal;
      return;
    }
    const controller = new AbortController();
    const onDeadline = (): void => controller.abort(deadline.signal.reason);
    deadline.signal.addEventListener('abort', onDeadline, { once: true });
    this.unlink = () => deadline.signal.removeEventListener('abort', onDeadline);
    this.timer = setTimeout(() => {
      this.expired = true;
      controller.abort(new DOMException(`the attempt took more than ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    this.signal = controller.signal;
  }

  get timedOut(): boolean {
    return this.expired;
  }

  /** The call answered (or its stream started): from now on only the deadline bounds it. */
  started(): void {
    clearTimeout(this.timer);
  }

  failed(): void {
    clearTimeout(this.timer);
    this.unlink();
  }
}
