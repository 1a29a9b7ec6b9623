import { coercedParameterDetails } from '../errors/format-error';
import { errorBody, type RenderedError } from '../http/error-response';

interface GraphQLishError {
  readonly message?: unknown;
  readonly path?: unknown;
  readonly extensions?: {
    readonly code?: unknown;
    readonly details?: unknown;
    readonly http?: { readonly status?: unknown; readonly headers?: unknown };
  };
}

/**
 * Renders what GraphQL execution reported as one ErrorResponse. Typed errors carry their code and status;
 * errors without a code and without a path come from variable coercion (a body field of the wrong type, or
 * a required one missing) and say so in graphql-js's words, exactly as /graphql does; anything else is masked.
 */
export function renderGraphQLErrors(errors: readonly unknown[]): RenderedError {
  const typed = errors.map((error) => error as GraphQLishError);
  const withCode = typed.find((error) => typeof error.extensions?.code === 'string');
  if (withCode) {
    const status = Number(withCode.extensions?.http?.status) || 500;
    const details = withCode.extensions?.details;
    const headers = withCode.extensions?.http?.headers;
    return {
      status,
      body: errorBody(String(withCode.extensions?.code), String(withCode.message), typeof details === 'string' ? details : undefined),
      headers: isStringRecord(headers) ? headers : {},
    };
  }
  const coercion = typed.find((error) => error.path === undefined && typeof error.message === 'string');
  if (coercion) {
    const message = String(coercion.message);
    return { status: 400, body: errorBody('validation_error', message, coercedParameterDetails(message)), headers: {} };
  }
  return { status: 500, body: errorBody('internal_error', 'Internal server error'), headers: {} };
}

const isStringRecord = (value: unknown): value is Record<string, string> =>
  typeof value === 'object' && value !== null && Object.values(value).every((entry) => typeof entry === 'string');
