import type { ServerResponse } from 'node:http';

/** The spec's ErrorResponse; `details` is always a string. */
export interface ErrorBody {
  readonly error: string;
  readonly message: string;
  readonly details?: string;
  readonly timestamp: string;
}

export interface RenderedError {
  readonly status: number;
  readonly body: ErrorBody;
  readonly headers: Record<string, string>;
}

export function errorBody(error: string, message: string, details?: string): ErrorBody {
  return { error, message, ...(details === undefined ? {} : { details }), timestamp: new Date().toISOString() };
}

export function sendErrorResponse(response: ServerResponse, rendered: RenderedError): void {
  response.statusCode = rendered.status;
  for (const [name, value] of Object.entries(rendered.headers)) response.setHeader(name, value);
  response.setHeader('content-type', 'application/json; charset=utf-8');
  response.end(JSON.stringify(rendered.body));
}
