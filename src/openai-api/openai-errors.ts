import type { ServerResponse } from 'node:http';
import { ApiError } from '../errors/api-error';
import { BodyTooLargeError } from '../http/read-body';

/** OpenAI's error object: `{"error": {message, type, param, code}}`. */
export interface OpenAIErrorObject {
  readonly message: string;
  readonly type: string;
  /** The request field at fault, when one is. */
  readonly param: string | null;
  readonly code: string | null;
}

export interface RenderedOpenAIError {
  readonly status: number;
  readonly error: OpenAIErrorObject;
  /** Headers the error carries (Retry-After on 429 and 503). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A request /v1 cannot honour, found before the pipeline: always a 400 naming its field. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';

  constructor(
    message: string,
    readonly param: string | null,
  ) {
    super(message);
  }
}

/** OpenAI's `type` for a status; LLMOP's snake_case code goes in `code`, as on /api/v1. */
function typeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'insufficient_quota';
  if (status === 403) return 'permission_error';
  // What OpenAI answers for a requests-per-minute limit.
  if (status === 429) return 'requests';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export const openAIError = (status: number, message: string, code: string | null, param: string | null = null): RenderedOpenAIError => ({
  status,
  error: { message, type: typeOf(status), param, code },
});

/** The request fields that LLMOP's own validation messages start with ("Invalid top_p", "max_tokens is too large ..."). */
const namedFields: ReadonlySet<string> = new Set(['max_tokens', 'temperature', 'top_p', 'stop', 'messages', 'seed']);

/** The field an ApiError is about, as /v1 names it. */
function paramOf(error: ApiError, rename: (field: string) => string): string | null {
  const { code } = error.extensions;
  if (code === 'model_not_found' || code === 'model_unavailable') return 'model';
  if (code !== 'validation_error') return null;
  const field = /^(?:Invalid )?([a-z_]+)\b/.exec(error.message)?.[1];
  return field && namedFields.has(field) ? rename(field) : null;
}

export interface RenderOptions {
  readonly requestId: string;
  /** Told about errors that are not LLMOP's typed errors; the client sees only a 500 naming the request id. */
  readonly onUnexpected: (error: unknown) => void;
  /** LLMOP's field name to the one the client sent (`max_tokens` may have been `max_completion_tokens`). */
  readonly rename?: (field: string) => string;
}

/** Any error to OpenAI's shape with LLMOP's status; nothing but typed errors' own messages reaches the client. */
export function toOpenAIError(error: unknown, options: RenderOptions): RenderedOpenAIError {
  if (error instanceof InvalidRequestError) return openAIError(400, error.message, 'validation_error', error.param);
  if (error instanceof BodyTooLargeError) return openAIError(413, `Request body is too large: ${error.message}`, 'payload_too_large');
  if (error instanceof ApiError) {
    const { code, details, http } = error.extensions;
    const message = details ? `${error.message}: ${details}` : error.message;
    const rendered = openAIError(http.status, message, code, paramOf(error, options.rename ?? ((field) => field)));
    return error.retryAfterSeconds === undefined ? rendered : { ...rendered, headers: { 'retry-after': String(error.retryAfterSeconds) } };
  }
  options.onUnexpected(error);
  return openAIError(500, `Internal server error (request id ${options.requestId})`, 'internal_error');
}

/**
 * OpenAI's names for the rate-limit figures beside LLMOP's: `x-ratelimit-limit-requests`,
 * `x-ratelimit-remaining-requests`, and `x-ratelimit-reset-requests` as a duration ("12s").
 */
export function withOpenAIRateLimitHeaders(headers: ReadonlyMap<string, string>, nowMs = Date.now()): Record<string, string> {
  const all = Object.fromEntries(headers);
  const limit = headers.get('x-ratelimit-limit');
  const remaining = headers.get('x-ratelimit-remaining');
  const reset = headers.get('x-ratelimit-reset');
  if (limit !== undefined) all['x-ratelimit-limit-requests'] = limit;
  if (remaining !== undefined) all['x-ratelimit-remaining-requests'] = remaining;
  if (reset !== undefined) all['x-ratelimit-reset-requests'] = `${Math.max(0, Number(reset) - Math.floor(nowMs / 1000))}s`;
  return all;
}

export function sendOpenAIJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (response.destroyed || response.writableEnded) return;
  response.statusCode = status;
  for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
  response.setHeader('content-type', 'application/json; charset=utf-8');
  response.end(JSON.stringify(body));
}

export function sendOpenAIError(
  response: ServerResponse,
  rendered: RenderedOpenAIError,
  headers: Readonly<Record<string, string>> = {},
): void {
  sendOpenAIJson(response, rendered.status, { error: rendered.error }, { ...rendered.headers, ...headers });
}
