import type { ServerResponse } from 'node:http';
import { errorBody, sendErrorResponse } from './error-response';

/** Answers with the spec's ErrorResponse (`error`, `message`, `details`, `timestamp`). */
export function sendJsonError(response: ServerResponse, status: number, error: string, message: string, details?: string): void {
  sendErrorResponse(response, { status, body: errorBody(error, message, details), headers: {} });
}
