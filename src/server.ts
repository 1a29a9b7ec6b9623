import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ApolloServer } from '@apollo/server';
import type { ApiKeyRegistry } from './auth/api-keys';
import { authenticate } from './auth/caller';
import { createRequestContext, type RequestContext, type Services } from './context';
import { errorBody } from './http/error-response';
import { createGraphQLHandler } from './http/graphql-handler';
import { InFlightTracker } from './http/in-flight-tracker';
import { sendJsonError } from './http/json-error';
import { requestIdOf } from './http/request-id';
import type { Logger } from './logger';
import type { RequestLog } from './monitoring/request-log';
import type { RequestMonitor } from './monitoring/request-monitor';
import { ClientAbort } from './pipeline/client-abort';

export interface HttpServerSettings {
  readonly apollo: ApolloServer<RequestContext>;
  readonly services: Services;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  readonly apiKeys: ApiKeyRegistry;
  /** GET /, the GraphiQL page and its assets; resolves false for other paths. */
  readonly webPages?: (request: IncomingMessage, response: ServerResponse, pathname: string) => Promise<boolean>;
  /** Handles /api/v1: the REST layer SOFA generates from the same schema. */
  readonly restHandler?: (request: IncomingMessage, response: ServerResponse, context: RequestContext) => Promise<void>;
  /** Handles /graphql/stream: GraphQL over server-sent events (subscriptions, and any operation). */
  readonly graphqlSseHandler?: (request: IncomingMessage, response: ServerResponse, context: RequestContext) => Promise<void>;
  /** Handles /v1: the OpenAI-compatible API, which answers in OpenAI's error shape (a missing key too). */
  readonly openAIHandler?: OpenAIHandler;
  /** Sees every request from start to close: the access log and the request metrics. */
  readonly monitor?: RequestMonitor;
  /** GET /metrics, given the authenticated caller (undefined without a valid key). */
  readonly metricsHandler?: MetricsHandler;
}

/** Serves the Prometheus scrape; it decides who may read it (admins, or anyone with METRICS_PUBLIC). */
export type MetricsHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  authentication: ReturnType<typeof authenticate>,
) => Promise<void>;

export interface OpenAIHandler {
  handle(request: IncomingMessage, response: ServerResponse, context: RequestContext): Promise<void>;
  /** 401 in OpenAI's shape. */
  unauthorized(response: ServerResponse, reason: 'missing' | 'invalid'): void;
}

export interface HttpServer {
  readonly server: Server;
  readonly inFlight: InFlightTracker;
  /** Set once shutdown begins: answers carry `Connection: close` so keep-alive clients move on. */
  beginDraining(): void;
}

/** HTTP routing: public pages, then /graphql (Apollo) and /api/v1 (REST) behind authentication. */
export function createHttpServer(settings: HttpServerSettings): HttpServer {
  const graphql = createGraphQLHandler({ apollo: settings.apollo, maxBodyBytes: settings.maxBodyBytes });
  const inFlight = new InFlightTracker();
  let draining = false;
  /** The response of each socket's latest request: a parse error while its body arrives is that request's. */
  const latestResponse = new WeakMap<Socket, ServerResponse>();
  /** The status sent straight on the socket for a request whose body Node could not read (the app may still set another). */
  const sentOnSocket = new WeakMap<ServerResponse, number>();

  const server = createServer((request, response) => {
    const done = inFlight.begin();
    response.on('close', done);
    latestResponse.set(request.socket, response);
    const requestId = requestIdOf(request);
    const log = settings.monitor?.begin(requestId, request.method ?? 'GET');
    if (log) {
      const monitor = settings.monitor!;
      // 499 (as nginx logs it): the client left before any answer was sent. Aborted: it left before the
      // answer was complete (the status stays the one the server had sent, a cut 200 stream's included).
      response.on('close', () => {
        const sent = sentOnSocket.get(response);
        if (sent !== undefined) return monitor.end(log, sent, false);
        monitor.end(log, response.headersSent ? response.statusCode : 499, !response.writableFinished);
      });
    }
    response.setHeader('x-request-id', requestId);
    if (draining) response.setHeader('connection', 'close');

    const abort = new ClientAbort();
    response.on('close', () => {
      if (!response.writableFinished) abort.abort();
    });
    const url = new URL(request.url ?? '/', 'http://localhost');
    const isGraphQL = url.pathname === '/graphql';
    const isGraphQLStream = url.pathname === '/graphql/stream';
    const isRest = url.pathname === '/api/v1' || url.pathname.startsWith('/api/v1/');
    const isOpenAI = url.pathname === '/v1' || url.pathname.startsWith('/v1/');

    const route = async (): Promise<void> => {
      // Public pages first: a browser opening /graphql gets GraphiQL without a key.
      if (settings.webPages && (await settings.webPages(request, response, url.pathname))) {
        // Only paths the pages serve (a fixed set) get here: bounded as a label.
        if (log) log.route = url.pathname;
        return;
      }
      if (url.pathname === '/metrics' && settings.metricsHandler) {
        if (log) log.route = '/metrics';
        return settings.metricsHandler(request, response, authenticate(request, settings.apiKeys));
      }
      if (log) log.route = coarseRoute(url.pathname);
      if (!isGraphQL && !isGraphQLStream && !isRest && !(isOpenAI && settings.openAIHandler)) {
        return sendJsonError(response, 404, 'not_found', `No route for ${request.method ?? 'GET'} ${url.pathname}`);
      }
      const authentication = authenticate(request, settings.apiKeys);
      let caller = authentication.ok ? authentication.caller : undefined;
      // Probes are counted per address, so nobody can use up everyone's health checks.
      if (!caller && isProbe(request.method, url.pathname))
        caller = { id: `probe:${request.socket.remoteAddress ?? 'unknown'}`, name: 'probe', role: 'member' };
      const refusal = authentication.ok ? 'missing' : authentication.reason;
      if (!caller && isOpenAI && settings.openAIHandler) return settings.openAIHandler.unauthorized(response, refusal);
      if (!caller) return sendUnauthorized(response, isGraphQL || isGraphQLStream, refusal);
      if (log) log.callerName = caller.name;
      const context = createRequestContext(settings.services, requestId, caller, abort, log);
      if (isGraphQL) return graphql(request, response, url.search, context);
      if (isGraphQLStream) {
        if (settings.graphqlSseHandler) return settings.graphqlSseHandler(request, response, context);
        return sendJsonError(response, 404, 'not_found', `No route for ${request.method ?? 'GET'} ${url.pathname}`);
      }
      if (isOpenAI && settings.openAIHandler) return settings.openAIHandler.handle(request, response, context);
      if (settings.restHandler) return settings.restHandler(request, response, context);
      return sendJsonError(response, 404, 'not_found', `No route for ${request.method ?? 'GET'} ${url.pathname}`);
    };
    route().catch((error: unknown) => {
      settings.logger.error({ err: error, requestId }, 'request failed');
      if (!response.headersSent) {
        sendJsonError(response, 500, 'internal_error', 'Internal server error', `request id ${requestId}`);
      } else {
        response.destroy();
      }
    });
  });
  // Requests Node cannot even parse still get an ErrorResponse and an access-log line, then the connection
  // closes. A socket that cannot be written to (a client that reset it, a keep-alive one leaving) gets neither.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // A body that breaks belongs to the request still reading it: that request keeps its id and its one
    // line, which reads as the status sent here; if it was answered already, the connection just closes.
    const reading = latestResponse.get(socket as Socket);
    const owner = reading && !reading.req.complete ? reading : undefined;
    if (!socket.writable || owner?.headersSent || owner?.writableEnded) {
      socket.destroy();
      return;
    }
    const { status, reason, error: code, message } = clientErrorAnswer(error.code);
    const requestId = owner ? String(owner.getHeader('x-request-id')) : randomUUID();
    if (owner) sentOnSocket.set(owner, status);
    const body = JSON.stringify(errorBody(code, message));
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
    // A request of its own (a pipelined one, or the first): nothing of what it sent is trusted, not even its method.
    if (!owner && settings.monitor) settings.monitor.end(settings.monitor.begin(requestId, 'unknown'), status, false);
  });
  return {
    server,
    inFlight,
    beginDraining: () => {
      draining = true;
    },
  };
}

/** What Node would answer a request it could not read: 408 when it took too long to arrive, 431 for headers too large, else 400. */
function clientErrorAnswer(code: string | undefined): { status: number; reason: string; error: string; message: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, reason: 'Request Timeout', error: 'request_timeout', message: 'The request took too long to arrive' };
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      reason: 'Request Header Fields Too Large',
      error: 'headers_too_large',
      message: 'The request headers are too large',
    };
  }
  return { status: 400, reason: 'Bad Request', error: 'bad_request', message: 'Malformed HTTP request' };
}

/** Kubernetes probes need no key. */
const isProbe = (method: string | undefined, pathname: string): boolean =>
  (method === 'GET' || method === 'HEAD') && (pathname === '/api/v1/health' || pathname === '/api/v1/ready');

function sendUnauthorized(response: ServerResponse, graphql: boolean, reason: 'missing' | 'invalid'): void {
  const message = reason === 'missing' ? 'An API key is required' : 'The API key is not valid';
  const details = 'send Authorization: Bearer <api key>';
  response.setHeader('www-authenticate', 'Bearer realm="llmop"');
  if (!graphql) return sendJsonError(response, 401, 'unauthorized', message, details);
  response.statusCode = 401;
  response.setHeader('content-type', 'application/json; charset=utf-8');
  response.end(JSON.stringify({ errors: [{ message, extensions: { code: 'unauthorized', details } }] }));
}

const openAIRoutes = new Set(['/v1/chat/completions', '/v1/models']);

/** A label for what the request asked for before a handler names its route: a fixed set, never the raw path. */
function coarseRoute(pathname: string): RequestLog['route'] {
  if (pathname === '/graphql' || pathname === '/graphql/stream') return pathname;
  if (openAIRoutes.has(pathname)) return pathname;
  if (pathname === '/v1' || pathname.startsWith('/v1/')) return '/v1/{unmatched}';
  if (pathname === '/api/v1' || pathname.startsWith('/api/v1/')) return '/api/v1/{unmatched}';
  return 'unmatched';
}
