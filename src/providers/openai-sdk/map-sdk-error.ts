import OpenAI from 'openai';
import { ProviderError } from '../provider';
import { retryAfterMsOf } from './retry-after';

/**
 * Turns whatever the `openai` SDK threw into a ProviderError. Upstream messages are not copied, except
 * the reason a request was refused (400, 413, 422), which the caller needs to fix it: scrubbed of
 * anything that looks like a key and cut short.
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
    return fromStatus(error, error.status, providerName);
  }
  // By name: the SDK's JSON.parse may run in another realm (a test sandbox), where instanceof fails.
  if (error instanceof Error && error.name === 'SyntaxError') {
    return new ProviderError(`${providerName} sent a response that is not valid JSON`, {
      kind: 'bad_response',
      isRetryable: true,
      cause: error,
    });
  }
  // A body cut short (a reset mid-answer) surfaces from undici as a TypeError or a socket error.
  if (error instanceof Error && (error.name === 'TypeError' || 'code' in error)) {
    return new ProviderError(`${providerName} broke off its answer`, { kind: 'bad_response', isRetryable: true, cause: error });
  }
  return new ProviderError(`${providerName} failed with an unexpected error`, { kind: 'bad_response', cause: error });
}

function fromStatus(error: InstanceType<typeof OpenAI.APIError>, status: number, providerName: string): ProviderError {
  if (status === 401 || status === 403) {
    return new ProviderError(`${providerName} rejected the gateway's credentials (HTTP ${status})`, {
      kind: 'unavailable',
      statusCode: status,
      cause: error,
    });
  }
  if (status === 404) {
    return new ProviderError(`${providerName} does not serve this model (HTTP 404)`, {
      kind: 'unavailable',
      statusCode: status,
      cause: error,
    });
  }
  if (status === 400 || status === 413 || status === 422) {
    return new ProviderError(`${providerName} rejected the request (HTTP ${status})`, {
      kind: 'invalid_request',
      statusCode: status,
      reason: upstreamReason(error),
      cause: error,
    });
  }
  const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
  const label = status === 429 ? ' (rate limited)' : '';
  return new ProviderError(`${providerName} answered HTTP ${status}${label}`, {
    kind: 'upstream',
    statusCode: status,
    isRetryable: retryable,
    retryAfterMs: retryAfterMsOf(error.headers),
    cause: error,
  });
}

const maxReasonLength = 300;
/**
 * What could be a credential: `key=value` pairs named like secrets, Bearer and Basic credentials, JWTs,
 * and any run of 20 or more letters, digits, `_` or `-` that mixes letters and digits (OpenAI, Google,
 * Hugging Face and Azure keys all look like that; an English word or a number never does).
 */
const secretLike = [
  /\b(?:api[_-]?key|key|token|secret|password|authorization)\s*[=:]\s*\S+/gi,
  /\b(?:Bearer|Basic)\s+\S+/gi,
  /\beyJ[\w-]*\.[\w-]+\.[\w-]*/g,
  /(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[\w-]{20,}/g,
];

/** The upstream's own words about a refused request, without anything like a secret, at most 300 characters. */
function upstreamReason(error: InstanceType<typeof OpenAI.APIError>): string | undefined {
  // The SDK hands over the body's `error` object (OpenAI's shape), or the raw text when the body was not JSON.
  const body = error.error as { message?: unknown } | string | undefined;
  const message = typeof body === 'string' ? body : typeof body?.message === 'string' ? body.message : undefined;
  if (!message) return undefined;
  const scrubbed = secretLike
    .reduce((text, pattern) => text.replace(pattern, '[redacted]'), message)
    .replace(/\s+/g, ' ')
    .trim();
  return scrubbed.length > maxReasonLength ? `${scrubbed.slice(0, maxReasonLength - 1)}…` : scrubbed;
}
