import { ApiError, generationError, modelNotFound, modelUnavailable } from '../errors/api-error';
import { ProviderError, type ModelDescriptor } from '../providers/provider';
import type { ProviderRegistry, ResolvedModel } from '../providers/registry';
import { checkModelId } from '../services/generation-parameters';
import type { Deadline } from './deadline';

/** The model id to the provider that serves it; unknown and unavailable models are refused here. */
export async function routeModel(registry: ProviderRegistry, modelId: string): Promise<ResolvedModel> {
  const found = await registry.findModel(checkModelId(modelId));
  if (!found) throw modelNotFound(modelId);
  if (found.model.unavailableReason !== undefined) throw modelUnavailable(modelId, found.model.unavailableReason);
  return found;
}

export interface RetryPolicy {
  /** Retries after the first attempt, for errors the provider marks retryable. */
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** In [0, 1); injectable so tests can pin the jitter. */
  readonly random: () => number;
}

export const defaultRetryDelays = { baseDelayMs: 100, maxDelayMs: 2_000 } as const;

/**
 * The only layer that retries (the SDK's own retries are off, so retries never multiply):
 * exponential backoff with full jitter, and never past the deadline.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  deadline: Deadline,
): Promise<{ readonly value: T; readonly attempts: number; readonly failures: readonly FailedAttempt[] }> {
  const failures: FailedAttempt[] = [];
  for (let attempts = 1; ; attempts += 1) {
    const startedAt = performance.now();
    try {
      return { value: await attempt(), attempts, failures };
    } catch (error) {
      failures.push({ error, latencyMs: Math.round(performance.now() - startedAt) });
      const retryable = error instanceof ProviderError && error.isRetryable && !deadline.signal.aborted;
      const delayMs = policy.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempts - 1));
      if (!retryable || attempts > policy.maxRetries || delayMs >= deadline.remainingMs) {
        throw new AttemptsExhausted(error, attempts, failures);
      }
      await sleep(delayMs, deadline.signal);
    }
  }
}

/** One upstream call that failed, as the ledger keeps it. */
export interface FailedAttempt {
  readonly error: unknown;
  readonly latencyMs: number;
}

/** The last attempt's error, with every failed attempt (the record keeps them). */
export class AttemptsExhausted extends Error {
  override readonly name = 'AttemptsExhausted';
  constructor(
    readonly lastError: unknown,
    readonly attempts: number,
    readonly failures: readonly FailedAttempt[],
  ) {
    super('every attempt failed', { cause: lastError });
  }
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

/** What a caller sees of a provider failure: a typed error that never carries upstream bodies. */
export function toApiError(error: unknown, model: ModelDescriptor, deadline?: Deadline): ApiError {
  if (error instanceof ApiError) return error;
  if (deadline?.expired) {
    return generationError(`Generation with model "${model.id}" failed`, `no answer within ${deadline.timeoutMs} ms`);
  }
  if (error instanceof ProviderError) {
    if (error.kind === 'unavailable') return modelUnavailable(model.id, error.message);
    return generationError(`Generation with model "${model.id}" failed`, error.message);
  }
  return generationError(`Generation with model "${model.id}" failed`, 'the provider failed unexpectedly');
}
