import { ProviderError } from '../../providers/provider';
import type { Deadline } from '../deadline';
import type { BreakerPermit } from './circuit-breaker';
import type { Candidate, RoutePlan } from './route-plan';

export interface RetryPolicy {
  /** Retries per endpoint after its first attempt, for errors the provider marks retryable. */
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** The longest upstream Retry-After waited for; a longer one moves on to the next endpoint at once. */
  readonly retryAfterMaxMs: number;
  /** In [0, 1); injectable so tests can pin the jitter. */
  readonly random: () => number;
}

/** One upstream call that failed, as the ledger and the answer's `attempts` keep it. */
export interface FailedAttempt {
  readonly candidate: Candidate;
  readonly error: unknown;
  readonly latencyMs: number;
}

/** The call that answered, and what it took to get there. */
export interface Served<T> {
  readonly value: T;
  readonly candidate: Candidate;
  readonly failures: readonly FailedAttempt[];
  /** Ends the endpoint's count of this call in flight; a stream calls it when it ends. Idempotent. */
  readonly done: () => void;
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

/** After a failed attempt: stop trying, move to the next candidate, or retry this one after a delay. */
type NextStep = { readonly step: 'stop' } | { readonly step: 'next' } | { readonly step: 'retry'; readonly delayMs: number };

/**
 * The routing policies, the one layer that retries: each candidate in the plan's order, skipped at once
 * when its breaker is open; on it, up to `maxRetries` retries of a retryable failure with exponential
 * backoff and full jitter (at least the upstream's Retry-After, when that is under the cap), never past
 * the deadline; then the next candidate. A request error (400-class) stops everything: no fallback
 * would take it either. `call` must settle when the deadline's signal aborts.
 */
export async function callThroughPolicies<T>(
  plan: RoutePlan,
  policy: RetryPolicy,
  deadline: Deadline,
  call: (candidate: Candidate) => Promise<T>,
): Promise<Served<T>> {
  const failures: FailedAttempt[] = [];
  let lastError: unknown;
  let skippedOpenMs: number | undefined;
  for (const candidate of plan.candidates) {
    const { endpoint } = candidate;
    for (let attempt = 1; ; attempt += 1) {
      if (deadline.signal.aborted) throw new RoutingFailed(lastError ?? deadline.signal.reason, failures);
      const permit = endpoint.breaker.tryAcquire();
      if (!permit) {
        skippedOpenMs = Math.min(skippedOpenMs ?? Number.POSITIVE_INFINITY, endpoint.breaker.retryInMs);
        break;
      }
      endpoint.inFlight += 1;
      const startedAt = performance.now();
      try {
        const value = await call(candidate);
        permit.succeeded();
        return { value, candidate, failures, done: once(() => (endpoint.inFlight -= 1)) };
      } catch (error) {
        endpoint.inFlight -= 1;
        failures.push({ candidate, error, latencyMs: Math.round(performance.now() - startedAt) });
        lastError = error;
        const next = nextStep(error, attempt, permit, policy, deadline);
        if (next.step === 'stop') throw new RoutingFailed(error, failures);
        if (next.step === 'next') break;
        await sleep(next.delayMs, deadline.signal);
      }
    }
  }
  const neverTried = failures.length === 0;
  throw new RoutingFailed(lastError, failures, neverTried ? (skippedOpenMs ?? 0) : undefined);
}

/** Settles the breaker's permit with what the failure says about the endpoint, and picks what to do next. */
function nextStep(error: unknown, attempt: number, permit: BreakerPermit, policy: RetryPolicy, deadline: Deadline): NextStep {
  const saturated = error instanceof ProviderError && error.kind === 'saturated';
  if (deadline.signal.aborted) {
    // The deadline passed while the endpoint was answering: it was too slow. A client that left says nothing.
    if (deadline.expired && !saturated) permit.failed();
    else permit.abandoned();
    return { step: 'stop' };
  }
  if (!(error instanceof ProviderError)) {
    permit.abandoned();
    return { step: 'stop' };
  }
  if (saturated) {
    // A full queue is load, not ill health: the next replica may have room.
    permit.abandoned();
    return { step: 'next' };
  }
  if (error.kind === 'invalid_request') {
    permit.succeeded();
    return { step: 'stop' };
  }
  if (!error.isRetryable) {
    // A 4xx the request may not deserve (402 at the provider, 404 model not served): the endpoint is up.
    if (error.kind === 'upstream' && error.statusCode !== undefined && error.statusCode < 500) permit.succeeded();
    else permit.failed();
    return { step: 'next' };
  }
  permit.failed();
  if (attempt > policy.maxRetries) return { step: 'next' };
  if (error.retryAfterMs !== undefined && error.retryAfterMs > policy.retryAfterMaxMs) return { step: 'next' };
  const backoffMs = policy.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const delayMs = Math.max(backoffMs, error.retryAfterMs ?? 0);
  return delayMs >= deadline.remainingMs ? { step: 'next' } : { step: 'retry', delayMs };
}

function once(action: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    action();
  };
}

/** Waits `ms`, or less when the signal aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
