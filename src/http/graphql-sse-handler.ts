import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExecutionResult } from 'graphql';
import { createHandler, type OperationArgs, type ExecutionResult as SseExecutionResult } from 'graphql-sse';
import type { RequestContext } from '../context';
import type { Logger } from '../logger';
import { drained } from './drained';
import type { GraphQLOperations } from './graphql-operations';
import { BodyTooLargeError, readBody } from './read-body';

export interface GraphQLSseHandlerSettings {
  readonly operations: GraphQLOperations;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
}

export interface GraphQLSseHandler {
  /** The /graphql/stream route (server.ts's `graphqlSseHandler`). */
  readonly handle: (request: IncomingMessage, response: ServerResponse, context: RequestContext) => Promise<void>;
  /**
   * Shutdown: every running subscription's signal aborts, so each ends (a generation stream with the
   * error the pipeline's interruption gives it, a run's progress at once) and its request can drain.
   */
  endSubscriptions(): void;
}

/** graphql-sse's context must be a plain record type: RequestContext, an interface, goes through as one. */
type SseContext = Record<PropertyKey, unknown>;

/**
 * /graphql/stream: GraphQL over server-sent events (graphql-sse's "distinct connections" mode). One
 * POST is one operation, a subscription or any other, answered as `next` events then one `complete`.
 * server.ts has authenticated the caller and made the request's context, whose signal aborts when the
 * client goes away; leaving the stream also returns the subscription, so the upstream call stops.
 * Refusals of the document or of the operation (limits, rate limit, budget) are `next` events with
 * errors, coded as /graphql codes them; only a request that is not GraphQL over SSE gets a 4xx.
 */
export function createGraphQLSseHandler(settings: GraphQLSseHandlerSettings): GraphQLSseHandler {
  const { operations, logger } = settings;
  /** How to end each running subscription, for shutdown. */
  const running = new Set<() => void>();
  const handler = createHandler<IncomingMessage, RequestContext, SseContext>({
    // No stream tokens: the "single connection" mode, whose operations would outlive their request and its context, is off.
    authenticate: () => null,
    onSubscribe: (request, params) => {
      const prepared = operations.prepare(params, request.context);
      if (!prepared.ok) return refusal(prepared.errors);
      // Its context's signal aborts when the client goes away or at shutdown (see `handle`).
      return prepared.args as OperationArgs<SseContext>;
    },
    // Validated in onSubscribe, with the armor rules; graphql-sse would validate again with graphql-js's own only.
    validate: () => [],
    // graphql-sse types results with GraphQLError instances but only serialises them: formatted errors go through as they are.
    onNext: (_context, _request, result) => operations.formatResult(result as ExecutionResult) as SseExecutionResult,
  });

  const handle = async (request: IncomingMessage, response: ServerResponse, context: RequestContext): Promise<void> => {
    // POST only: any page can make a browser send a GET (an EventSource, an image), and a subscription spends;
    // a JSON POST from another origin needs a CORS preflight first, as csrfPrevention asks of /graphql.
    if (request.method !== 'POST') {
      response.setHeader('allow', 'POST');
      return sendErrors(response, 405, 'method_not_allowed', 'GraphQL over SSE takes a POST with a JSON body');
    }
    if (!/\btext\/event-stream\b/i.test(request.headers.accept ?? '')) {
      return sendErrors(response, 406, 'bad_request', 'GraphQL over SSE answers server-sent events: send Accept: text/event-stream');
    }
    if (!/^application\/(.+\+)?json\b/i.test(request.headers['content-type'] ?? '')) {
      return sendErrors(response, 415, 'bad_request', 'The request body must be JSON: send Content-Type: application/json');
    }
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(await readBody(request, settings.maxBodyBytes));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new SyntaxError('not an object');
      body = parsed as Record<string, unknown>;
    } catch (error) {
      if (error instanceof BodyTooLargeError)
        return sendErrors(response, 413, 'payload_too_large', 'Request body is too large', error.message);
      if (error instanceof SyntaxError) return sendErrors(response, 400, 'validation_error', 'Request body is not a JSON object');
      throw error;
    }

    // The operation's own signal: aborted when the client goes away (the request's) or at shutdown. Not
    // AbortSignal.any: combined with a long-lived shutdown signal it keeps ~60 bytes per request for good.
    const operation = new AbortController();
    const end = (): void => operation.abort();
    context.signal?.addEventListener('abort', end, { once: true });
    running.add(end);
    try {
      // A copy holds the context's fields, not its `signal` getter; the operation's signal replaces the request's abort.
      await serve(request, response, { ...context, signal: operation.signal, clientAbort: undefined }, body);
    } finally {
      running.delete(end);
      context.signal?.removeEventListener('abort', end);
    }
  };

  const serve = async (
    request: IncomingMessage,
    response: ServerResponse,
    context: RequestContext,
    body: Record<string, unknown>,
  ): Promise<void> => {
    const [stream, init] = await handler({
      method: 'POST',
      url: request.url ?? '/graphql/stream',
      headers: {
        // graphql-sse compares the whole header with `text/event-stream`; any Accept naming it was let through above.
        get: (name) => (name === 'accept' ? 'text/event-stream' : headerOf(request, name)),
      },
      body,
      raw: request,
      context,
    });
    if (typeof stream !== 'object' || stream === null) {
      // graphql-sse's own refusals (a missing or non-string query, bad variables) carry no code.
      return sendErrors(response, init.status, 'bad_request', errorMessageIn(stream) ?? init.statusText);
    }

    response.statusCode = init.status;
    response.setHeader('content-type', 'text/event-stream; charset=utf-8');
    response.setHeader('cache-control', 'no-cache');
    response.setHeader('x-accel-buffering', 'no');
    // Rate-limit figures, set while the operation was admitted.
    for (const [name, value] of context.responseHeaders) response.setHeader(name, value);
    response.flushHeaders();
    const leave = (): void => void stream.return(undefined);
    response.once('close', leave);
    try {
      for await (const message of stream) {
        if (response.destroyed) break;
        if (!response.write(message)) await drained(response);
      }
    } catch (error) {
      // The operation's events failed outside any resolver: logged, and masked as /graphql masks it.
      logger.error({ err: error, requestId: context.requestId }, 'GraphQL over SSE stream failed');
      const failure = { errors: [{ message: 'Internal server error', extensions: { code: 'internal_error' } }] };
      if (!response.destroyed) response.write(`event: next\ndata: ${JSON.stringify(failure)}\n\nevent: complete\ndata:\n\n`);
    } finally {
      response.off('close', leave);
      response.end();
    }
  };
  return {
    handle,
    endSubscriptions: () => {
      for (const end of running) end();
    },
  };
}

/** The operation's one result, for a document refused before it runs. */
async function* refusal(errors: SseExecutionResult['errors']): AsyncGenerator<SseExecutionResult> {
  yield { errors };
}

function headerOf(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function errorMessageIn(body: string | null): string | undefined {
  if (!body) return undefined;
  try {
    const message: unknown = JSON.parse(body)?.errors?.[0]?.message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

function sendErrors(response: ServerResponse, status: number, code: string, message: string, details?: string): void {
  response.statusCode = status;
  response.setHeader('content-type', 'application/json; charset=utf-8');
  response.end(JSON.stringify({ errors: [{ message, extensions: { code, ...(details === undefined ? {} : { details }) } }] }));
}
