import { GraphQLError } from 'graphql';

/** The error codes clients see in `extensions.code` and in REST's `error` field. */
export type ApiErrorCode =
  | 'validation_error'
  | 'model_not_found'
  | 'model_unavailable'
  | 'generation_error'
  | 'upstream_rate_limited'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unauthorized'
  | 'rate_limit_exceeded'
  | 'forbidden'
  | 'budget_exceeded'
  | 'budget_not_found'
  | 'conflict'
  | 'generation_not_found'
  | 'prompt_not_found'
  | 'dataset_not_found'
  | 'evaluation_not_found'
  | 'ledger_unavailable'
  | 'service_unavailable'
  | 'internal_error';

export interface ApiErrorExtensions {
  readonly [attribute: string]: unknown;
  readonly code: ApiErrorCode;
  readonly details?: string;
  readonly http: { readonly status: number };
}

/**
 * A GraphQL-facing error that carries everything the REST layer needs to render the spec's
 * ErrorResponse: a snake_case code, an HTTP status, a message and string details.
 */
export class ApiError extends GraphQLError {
  declare readonly extensions: ApiErrorExtensions;

  /**
   * @param retryAfterSeconds when a retry may succeed; the root-field middleware (and /v1) put it in the
   * response's Retry-After header
   */
  constructor(
    code: ApiErrorCode,
    status: number,
    message: string,
    details?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message, {
      extensions: { code, http: { status }, ...(details === undefined ? {} : { details }) },
    });
    this.name = 'ApiError';
  }

  get code(): ApiErrorCode {
    return this.extensions.code;
  }
}

export const validationError = (message: string, details?: string): ApiError => new ApiError('validation_error', 400, message, details);

export const modelNotFound = (modelId: string): ApiError =>
  new ApiError('model_not_found', 404, `Model "${modelId}" was not found`, 'GET /api/v1/models lists the available models');

/** With `retryAfterMs` when it is known when to try again (a breaker's probe, a queue's turn). */
export const modelUnavailable = (modelId: string, reason: string, retryAfterMs?: number): ApiError =>
  new ApiError('model_unavailable', 503, `Model "${modelId}" is unavailable`, reason, retryAfter(retryAfterMs));

/** The upstream kept answering 429 after the retries this gateway allows. */
export const upstreamRateLimited = (modelId: string, details: string, retryAfterMs: number): ApiError =>
  new ApiError(
    'upstream_rate_limited',
    429,
    `The provider of model "${modelId}" is rate limiting requests`,
    details,
    retryAfter(retryAfterMs),
  );

/** The request's deadline (UPSTREAM_TIMEOUT_MS from admission) passed before an answer. */
export const upstreamTimeout = (modelId: string, details: string): ApiError =>
  new ApiError('upstream_timeout', 504, `The provider of model "${modelId}" did not answer in time`, details);

/** The upstream failed (5xx, a broken or malformed answer, refused credentials) after retries and fallbacks. */
export const upstreamError = (modelId: string, details: string): ApiError =>
  new ApiError('upstream_error', 502, `The provider of model "${modelId}" failed`, details);

const retryAfter = (milliseconds: number | undefined): number | undefined =>
  milliseconds === undefined ? undefined : Math.max(1, Math.ceil(milliseconds / 1000));

export const generationError = (message: string, details?: string): ApiError => new ApiError('generation_error', 500, message, details);

export const forbidden = (message: string, details?: string): ApiError => new ApiError('forbidden', 403, message, details);

export const generationNotFound = (generationId: string): ApiError =>
  new ApiError('generation_not_found', 404, `Generation "${generationId}" was not found`);

/** The ledger's database cannot be reached: nothing is generated unmetered. */
export const ledgerUnavailable = (details: string): ApiError =>
  new ApiError('ledger_unavailable', 503, 'The ledger is unavailable, so no generation can be recorded', details);

/** A budget that applies has no room for the request's worst case: nothing was sent upstream. */
export const budgetExceeded = (details: string): ApiError =>
  new ApiError('budget_exceeded', 402, 'The request would exceed a budget, so it was not sent to the provider', details);

export const budgetNotFound = (budgetId: string): ApiError => new ApiError('budget_not_found', 404, `Budget "${budgetId}" was not found`);

export const promptNotFound = (name: string, version?: number): ApiError =>
  new ApiError(
    'prompt_not_found',
    404,
    version === undefined ? `Prompt "${name}" was not found` : `Prompt "${name}" has no version ${version}`,
  );

export const datasetNotFound = (datasetId: string): ApiError =>
  new ApiError('dataset_not_found', 404, `Dataset "${datasetId}" was not found`);

export const evaluationNotFound = (evaluationId: string): ApiError =>
  new ApiError('evaluation_not_found', 404, `Evaluation "${evaluationId}" was not found`);

export const shuttingDown = (details = 'what was generated until now is recorded; retry on another replica'): ApiError =>
  new ApiError('service_unavailable', 503, 'The server is shutting down', details);

export const subscriptionNotSubscribed = (): ApiError =>
  new ApiError(
    'validation_error',
    400,
    'Subscriptions are served over GraphQL-over-SSE and WebSocket',
    'subscribe with POST /graphql/stream (Accept: text/event-stream) or over a WebSocket at /graphql (graphql-transport-ws)',
  );

export const conflict = (message: string, details?: string): ApiError => new ApiError('conflict', 409, message, details);
