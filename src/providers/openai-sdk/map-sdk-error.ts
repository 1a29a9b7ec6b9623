import OpenAI from 'openai';
import { ProviderError } from '../provider';

/**
 * Turns whatever the `openai` SDK threw into a ProviderError. Upstream messages are not copied:
 * they can echo request content or part of a key; the status code says enough.
 */
export function mapSdkError(error: unknown, providerName: string, timeoutMs: number): ProviderError {
  if (error instanceof ProviderError) return error;
  if (error instanceof OpenAI.APIUserAbortError) {
    return new ProviderError(`request to ${providerName} was cancelled`, { kind: 'timeout', cause: error });
  }
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new ProviderError(`${providerName} did not answer within ${timeoutMs} ms`, {
      kind: 'timeout',
      isRetryable: true,
      cause: error,
    });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new ProviderError(`${providerName} is unreachable`, { kind: 'unavailable', isRetryable: true, cause: error });
  }
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    return fromStatus(error.status, providerName, error);
  }
  // By name: the SDK's JSON.parse may run in another realm (a test sandbox), where instanceof fails.
  if (error instanceof Error && error.name === 'SyntaxError') {
    return new ProviderError(`${providerName} sent a response that is not valid JSON`, {
      kind: 'bad_response',
      cause: error,
    });
  }
  return new ProviderError(`${providerName} failed with an unexpected error`, { kind: 'bad_response', cause: error });
}

function fromStatus(status: number, providerName: string, cause: unknown): ProviderError {
  if (status === 401 || status === 403) {
    return new ProviderError(`${providerName} rejected the gateway's credentials (HTTP ${status})`, {
      kind: 'unavailable',
      statusCode: status,
      cause,
    });
  }
  if (status === 404) {
    return new ProviderError(`${providerName} does not serve this model (HTTP 404)`, {
      kind: 'unavailable',
      statusCode: status,
      cause,
    });
  }
  if (status === 400 || status === 422) {
    return new ProviderError(`${providerName} rejected the request (HTTP ${status})`, {
      kind: 'invalid_request',
      statusCode: status,
      cause,
    });
  }
  const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
  const label = status === 429 ? ' (rate limited)' : '';
  return new ProviderError(`${providerName} answered HTTP ${status}${label}`, {
    kind: 'upstream',
    statusCode: status,
    isRetryable: retryable,
    cause,
  });
}
