import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExecutionResult, GraphQLSchema } from 'graphql';
import type { RequestContext } from '../context';
import { errorBody, sendErrorResponse, type RenderedError } from '../http/error-response';
import { BodyTooLargeError, readBody } from '../http/read-body';
import type { Logger } from '../logger';
import type { OperationRateLimiter } from '../middlewares/operation-rate-limiter';
import { exportFeedback } from './feedback-export.route';
import { createGenerateStreamRoute } from './generate-stream.route';
import { renderGraphQLErrors } from './error-response';
import { createCompiledExecutor } from './compiled-executor';
import type { OpenApiContract } from './openapi-contract';
import { matchRoute, methodsWithBody, restBasePath, type RouteMatch, successStatus, type OperationName } from './routes';
import { shapeForContract } from './shape-response';
import { prepareOperation, prepareSofaOperations, readSchemaAsSofa, restVariables } from './sofa-operations';

export interface RestHandlerSettings {
  readonly schema: GraphQLSchema;
  readonly contract: OpenApiContract;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  /** Counts the hand-written routes' calls (the operations are counted by their resolvers). */
  readonly rateLimiter?: OperationRateLimiter;
  /** Streams send a comment line when this long passes without a write. */
  readonly streamHeartbeatMs: number;
  /** Whether each route's operation is compiled once it is used (src/rest/compiled-executor.ts); off while tracing. */
  readonly compileOperations: boolean;
}

/**
 * /api/v1: routing errors (404, 405), body limits (413) and JSON shape (400) happen here; each operation
 * is the one SOFA generates from the schema, prepared at start-up and executed directly on the parsed body
 * (compiled once it is in use).
 */
export function createRestHandler(settings: RestHandlerSettings) {
  const { schema, contract, logger } = settings;
  const sofa = readSchemaAsSofa(schema);
  const operations = prepareSofaOperations(schema, sofa);
  const run = createCompiledExecutor({ schema, compile: settings.compileOperations, compileAfterCalls: 2, logger });
  const generateStream = createGenerateStreamRoute({
    schema,
    operation: prepareOperation(schema, 'Subscription.generate_stream', sofa),
    contract,
    heartbeatMs: settings.streamHeartbeatMs,
    logger,
  });

  return async (request: IncomingMessage, response: ServerResponse, context: RequestContext): Promise<void> => {
    const method = request.method ?? 'GET';
    const { pathname, searchParams } = new URL(request.url ?? '/', 'http://localhost');
    const relativePath = pathname.slice(restBasePath.length) || '/';
    const route = matchRoute(method, relativePath);
    if (context.requestLog) context.requestLog.route = routeLabel(route);

    if (route.kind === 'none') {
      return sendErrorResponse(response, {
        status: 404,
        body: errorBody('not_found', `No route for ${method} ${pathname}`, 'see GET /api/v1/openapi.json for the routes'),
        headers: {},
      });
    }
    if (route.kind === 'wrong_method') {
      return sendErrorResponse(response, {
        status: 405,
        body: errorBody('method_not_allowed', `${method} is not allowed on ${pathname}`, `allowed: ${route.allowed.join(', ')}`),
        headers: { allow: route.allowed.join(', ') },
      });
    }
    if (route.kind === 'document') {
      const asYaml = route.path === '/openapi.yaml';
      response.setHeader('content-type', asYaml ? 'application/yaml; charset=utf-8' : 'application/json; charset=utf-8');
      response.end(asYaml ? contract.yaml : contract.json);
      return;
    }

    if (route.kind === 'hand_written' && route.path === '/feedback/export')
      return exportFeedback(response, context, searchParams, settings);

    let body: Record<string, unknown> = {};
    if (methodsWithBody.has(method)) {
      const read = await readJsonObject(request, settings.maxBodyBytes);
      if ('error' in read) return sendErrorResponse(response, read.error);
      body = read.body;
    }
    if (route.kind === 'hand_written') return generateStream(response, context, body);
    const operation = operations[route.operation];
    const variables = restVariables(operation, route.pathParameters, body, methodsWithBody.has(method) ? undefined : searchParams);
    if ('problem' in variables) return sendErrorResponse(response, invalid(variables.problem));

    const result: ExecutionResult = await run({
      document: operation.document,
      operationName: operation.operationName,
      variables: variables.values,
      context,
    });
    if (result.errors) {
      const rendered = renderGraphQLErrors(result.errors);
      if (rendered.body.error === 'internal_error') {
        logger.error({ requestId: context.requestId, errors: result.errors.map((error) => error.message) }, 'REST operation failed');
      }
      return sendErrorResponse(response, { ...rendered, headers: { ...rendered.headers, ...Object.fromEntries(context.responseHeaders) } });
    }
    const payload = result.data?.[operation.fieldName];
    const status = isNotReady(route.operation, payload) ? 503 : successStatus(route.operation);
    for (const [name, value] of context.responseHeaders) response.setHeader(name, value);
    response.statusCode = status;
    if (status === 204) {
      // No Content: the operation's result (true) says only that it happened.
      response.end();
      return;
    }
    const shaped = shapeForContract(payload, contract.responseSchema(route.openApiPath, method, String(status)), contract);
    response.setHeader('content-type', 'application/json; charset=utf-8');
    response.end(JSON.stringify(shaped));
  };
}

/** The readiness probe answers 503 with its normal body when not ready. */
const isNotReady = (operation: OperationName, payload: unknown): boolean =>
  operation === 'Query.ready' && (payload as { ready?: unknown } | null | undefined)?.ready === false;

type JsonObjectBody = { body: Record<string, unknown> } | { error: RenderedError };

async function readJsonObject(request: IncomingMessage, limitBytes: number): Promise<JsonObjectBody> {
  let raw: string;
  try {
    raw = await readBody(request, limitBytes);
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) throw error;
    return { error: { status: 413, body: errorBody('payload_too_large', 'Request body is too large', error.message), headers: {} } };
  }
  // No body at all is no arguments (POST /evaluations/{id}/cancel): the operation's own checks name what is missing.
  if (raw.trim() === '') return { body: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { error: invalid('the request body is not valid JSON') };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { error: invalid('the request body must be a JSON object') };
  }
  return { body: parsed as Record<string, unknown> };
}

const invalid = (details: string): RenderedError => ({
  status: 400,
  body: errorBody('validation_error', 'Invalid request parameters', details),
  headers: {},
});

/** The route template a request matched, for metrics and the access log: bounded, never the raw path. */
function routeLabel(route: RouteMatch): string {
  if (route.kind === 'operation') return `${restBasePath}${route.openApiPath}`;
  if (route.kind === 'document' || route.kind === 'hand_written') return `${restBasePath}${route.path}`;
  return `${restBasePath}/{unmatched}`;
}
