import {
  ApiError,
  generationError,
  modelUnavailable,
  upstreamError,
  upstreamRateLimited,
  upstreamTimeout,
  validationError,
} from '../../errors/api-error';
import { ProviderError, type ModelDescriptor } from '../../providers/provider';
import type { Deadline } from '../deadline';
import { RoutingFailed } from './policies';

/** The Retry-After given when nothing better is known: a queue's turn, a 429 that named no wait. */
const defaultRetryAfterMs = 1000;

/**
 * What a caller sees of a provider failure: a typed error it can act on, never an upstream body.
 * `deadline` is the request's: once it has passed, the failure is a timeout whatever the last error.
 */
export function toApiError(error: unknown, model: ModelDescriptor, deadline?: Deadline): ApiError {
  if (error instanceof ApiError) return error;
  const saturated = error instanceof ProviderError && error.kind === 'saturated';
  if (deadline?.expired) {
    return saturated
      ? modelUnavailable(model.id, `no connection slot came free within ${deadline.timeoutMs} ms`, defaultRetryAfterMs)
      : upstreamTimeout(model.id, `no answer within ${deadline.timeoutMs} ms`);
  }
  if (!(error instanceof ProviderError)) {
    return generationError(`Generation with model "${model.id}" failed`, 'the provider failed unexpectedly');
  }
  switch (error.kind) {
    case 'saturated':
      return modelUnavailable(model.id, error.message, defaultRetryAfterMs);
    case 'invalid_request':
      return validationError(`The provider refused the request for model "${model.id}"`, error.reason ?? error.message);
    case 'timeout':
      return upstreamTimeout(model.id, error.message);
    case 'unavailable':
      // Refused credentials are the gateway's misconfiguration; a refused or reset connection a failed upstream.
      if (error.statusCode === 401 || error.statusCode === 403 || error.isRetryable) return upstreamError(model.id, error.message);
      return modelUnavailable(model.id, error.message);
    case 'upstream':
      if (error.statusCode === 429) return upstreamRateLimited(model.id, error.message, error.retryAfterMs ?? defaultRetryAfterMs);
      // No HTTP status: in-process inference failed, a failure of the generation itself.
      if (error.statusCode === undefined) return generationError(`Generation with model "${model.id}" failed`, error.message);
      return upstreamError(model.id, error.message);
    case 'bad_response':
      return upstreamError(model.id, error.message);
  }
}

/** Upstream 401 or 403: the gateway's own key or configuration is wrong, which an operator must hear about. */
export function isMisconfiguration(error: unknown): error is ProviderError {
  return error instanceof ProviderError && error.kind === 'unavailable' && (error.statusCode === 401 || error.statusCode === 403);
}

/** What the caller sees when no candidate answered: the deciding error, or 503 when every breaker was open. */
export function routingFailureToApiError(failure: unknown, model: ModelDescriptor, deadline?: Deadline): ApiError {
  if (!(failure instanceof RoutingFailed)) return toApiError(failure, model, deadline);
  if (failure.lastError === undefined && failure.breakersOpenForMs !== undefined) {
    return modelUnavailable(
      model.id,
      'every endpoint that serves it is failing: their circuit breakers are open',
      failure.breakersOpenForMs,
    );
  }
  return toApiError(failure.lastError, model, deadline);
}
