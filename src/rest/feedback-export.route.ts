import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context';
import { ApiError, validationError } from '../errors/api-error';
import { drained } from '../http/drained';
import { errorBody, sendErrorResponse } from '../http/error-response';
import type { Logger } from '../logger';
import type { OperationRateLimiter } from '../middlewares/operation-rate-limiter';
import { DateTimeISO } from '../resolvers/shared/scalars';
import { EXPORT_FORMATS, type ExportFormat, type ExportLine } from '../storage/feedback-types';

/** The bucket this route counts in (an "other" operation). */
const OPERATION = 'feedback_export';

/**
 * GET /api/v1/feedback/export: fine-tuning data as JSON Lines, written by hand because SOFA's routes
 * answer one JSON document. Lines are written as the database yields them, waiting for the client to
 * drain (memory stays flat for any size); everything that can be refused is refused before the first
 * byte, as an ordinary JSON error. A failure after it cuts the response short (no final chunk), so
 * the client sees a broken transfer rather than a file that looks complete.
 */
export async function exportFeedback(
  response: ServerResponse,
  context: RequestContext,
  query: URLSearchParams,
  settings: { readonly rateLimiter?: OperationRateLimiter; readonly logger: Logger },
): Promise<void> {
  let lines: AsyncIterator<ExportLine>;
  let first: IteratorResult<ExportLine>;
  try {
    await settings.rateLimiter?.checkRoute(context, OPERATION);
    const iterable = context.services.feedback.export(context.caller, readQuery(query));
    lines = iterable[Symbol.asyncIterator]();
    first = await lines.next();
  } catch (error) {
    const headers = Object.fromEntries(context.responseHeaders);
    if (error instanceof ApiError) {
      const { code, details, http } = error.extensions;
      return sendErrorResponse(response, { status: http.status, body: errorBody(code, error.message, details), headers });
    }
    settings.logger.error({ err: error, requestId: context.requestId }, 'feedback export failed');
    return sendErrorResponse(response, { status: 500, body: errorBody('internal_error', 'Internal server error'), headers });
  }

  const format = query.get('format') as ExportFormat;
  for (const [name, value] of context.responseHeaders) response.setHeader(name, value);
  response.statusCode = 200;
  response.setHeader('content-type', 'application/x-ndjson');
  response.setHeader('content-disposition', `attachment; filename="feedback-${format}.jsonl"`);
  response.setHeader('cache-control', 'no-store');
  try {
    for (let next = first; !next.done; next = await lines.next()) {
      if (response.destroyed) {
        await lines.return?.();
        return;
      }
      if (!response.write(`${JSON.stringify(toJsonLine(next.value))}\n`)) await drained(response);
    }
    response.end();
  } catch (error) {
    settings.logger.error({ err: error, requestId: context.requestId }, 'feedback export stopped part way');
    response.destroy();
  }
}

/** One example in OpenAI's fine-tuning formats (chat, or preference for DPO). */
function toJsonLine(line: ExportLine): object {
  if (line.format === 'chat') {
    return {
      messages: [
        { role: 'user', content: line.prompt },
        { role: 'assistant', content: line.answer },
      ],
    };
  }
  return {
    input: { messages: [{ role: 'user', content: line.prompt }] },
    preferred_output: [{ role: 'assistant', content: line.preferred }],
    non_preferred_output: [{ role: 'assistant', content: line.nonPreferred }],
  };
}

/** The query string, checked with the messages GraphQL coercion would give, each naming its parameter. */
function readQuery(query: URLSearchParams) {
  const format = query.get('format');
  if (format === null) throw validationError('Invalid request parameters', 'format: required, one of chat, preference');
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw validationError('Invalid request parameters', `format: must be one of chat, preference, got "${format}"`);
  }
  const minScoreText = query.get('min_score');
  let minScore: number | undefined;
  if (minScoreText !== null) {
    minScore = Number(minScoreText);
    if (minScoreText.trim() === '' || !Number.isFinite(minScore))
      throw validationError('Invalid request parameters', 'min_score: must be a number from 0 to 1');
  }
  return {
    format: format as ExportFormat,
    modelId: query.get('model_id'),
    minScore,
    since: readTime(query, 'since'),
    until: readTime(query, 'until'),
  };
}

function readTime(query: URLSearchParams, name: string): Date | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  try {
    return DateTimeISO.parseValue(text) as Date;
  } catch {
    throw validationError('Invalid request parameters', `${name}: must be an RFC 3339 date-time, got "${text}"`);
  }
}
