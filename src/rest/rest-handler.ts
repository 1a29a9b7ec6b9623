import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphQLSchema } from 'graphql';
import type { RequestContext } from '../context';
import { BodyTooLargeError, readBody } from '../http/read-body';
import type { Logger } from '../logger';
import { errorBody, sendErrorResponse, type RenderedError } from '../http/error-response';
import type { OpenApiContract } from './openapi-contract';
import { matchRoute, type RouteMatch } from './routes';
import { shapeForContract } from './shape-response';
import { createSofaRouter, restBasePath, type SofaServerContext } from './sofa-router';

export interface RestHandlerSettings {
  readonly schema: GraphQLSchema;
  readonly contract: OpenApiContract;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
}

/**
 * /api/v1: routing errors (404, 405), body limits (413) and contract checks (400) happen here;
 * the operations themselves are SOFA's routes over the GraphQL resolvers.
 */
export function createRestHandler(settings: RestHandlerSettings) {
  const sofa = createSofaRouter(settings.schema, settings.logger);
  const { contract } = settings;

  return async (request: IncomingMessage, response: ServerResponse, context: RequestContext): Promise<void> => {
    const method = request.method ?? 'GET';
    const url = new URL(request.url ?? '/', 'http://localhost');
    const relativePath = url.pathname.slice(restBasePath.length) || '/';
    const route = matchRoute(method, relativePath);

    if (route.kind === 'none') {
      return sendErrorResponse(response, {
        status: 404,
        body: errorBody('not_found', `No route for ${method} ${url.pathname}`, 'see GET /api/v1/openapi.json for the routes'),
        headers: {},
      });
    }
    if (route.kind === 'wrong_method') {
      return sendErrorResponse(response, {
        status: 405,
        body: errorBody('method_not_allowed', `${method} is not allowed on ${url.pathname}`, `allowed: ${route.allowed.join(', ')}`),
        headers: { allow: route.allowed.join(', ') },
      });
    }
    if (route.kind === 'document') {
      const asYaml = route.path === '/openapi.yaml';
      response.setHeader('content-type', asYaml ? 'application/yaml; charset=utf-8' : 'application/json; charset=utf-8');
      response.end(asYaml ? contract.yaml : contract.json);
      return;
    }

    let body: string | undefined;
    if (method === 'POST') {
      const checked = await readCheckedBody(request, settings.maxBodyBytes, route, contract);
      if ('error' in checked) return sendErrorResponse(response, checked.error);
      body = checked.body;
    }

    const sofaRequest = new Request(`http://localhost${url.pathname}${url.search}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body,
    });
    const serverContext: SofaServerContext = { gatewayContext: context };
    const answer = await sofa.fetch(sofaRequest, serverContext);
    const payload: unknown = await answer.json();

    let status = answer.status;
    // The readiness probe answers 503 with its normal body when not ready.
    if (status === 200 && route.operation === 'Query.ready' && (payload as { ready?: boolean }).ready === false) status = 503;
    const shaped = status < 300 || route.operation === 'Query.ready'
      ? shapeForContract(payload, contract.responseSchema(route.openApiPath, method, String(status)), contract)
      : payload;
    answer.headers.forEach((value, name) => {
      if (name !== 'content-length') response.setHeader(name, value);
    });
    for (const [name, value] of context.responseHeaders) response.setHeader(name, value);
    response.statusCode = status;
    response.setHeader('content-type', 'application/json; charset=utf-8');
    response.end(JSON.stringify(shaped));
  };
}

type CheckedBody = { body: string } | { error: RenderedError };

async function readCheckedBody(
  request: IncomingMessage,
  limitBytes: number,
  route: Extract<RouteMatch, { kind: 'operation' }>,
  contract: OpenApiContract,
): Promise<CheckedBody> {
  let raw: string;
  try {
    raw = await readBody(request, limitBytes);
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) throw error;
    return { error: { status: 413, body: errorBody('payload_too_large', 'Request body is too large', error.message), headers: { connection: 'close' } } };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { error: invalid('the request body is not valid JSON') };
  }
  const problem = contract.checkRequestBody(route.openApiPath, 'POST', parsed);
  return problem ? { error: invalid(problem) } : { body: raw };
}

const invalid = (details: string): RenderedError => ({ status: 400, body: errorBody('validation_error', 'Invalid request parameters', details), headers: {} });
