import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { OperationTypeNode } from 'graphql';
import { CloseCode, handleProtocols, makeServer } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { ApiKeyRegistry } from '../auth/api-keys';
import { type Authentication, authenticate } from '../auth/caller';
import { createRequestContext, type Services } from '../context';
import { shuttingDown } from '../errors/api-error';
import type { Logger } from '../logger';
import type { RequestLog } from '../monitoring/request-log';
import type { RequestMonitor } from '../monitoring/request-monitor';
import type { Caller } from '../pipeline/caller';
import type { GraphQLOperations } from './graphql-operations';
import { InFlightTracker } from './in-flight-tracker';
import { requestIdOf } from './request-id';

export interface GraphQLWsServerSettings {
  readonly operations: GraphQLOperations;
  readonly services: Services;
  readonly apiKeys: ApiKeyRegistry;
  /** The largest message a client may send, as for a request body. */
  readonly maxPayloadBytes: number;
  readonly logger: Logger;
  /** Between two pings; a socket that has not answered the last one by the next is dropped. */
  readonly keepAliveMs?: number;
  /**
   * Sees every upgrade as one request: a refused one at once (its status), an accepted one when its
   * socket closes (101, the connection's length, its caller and the root fields it ran).
   */
  readonly monitor?: RequestMonitor;
}

export interface GraphQLWsServer {
  /** Takes the HTTP server's WebSocket upgrades to /graphql; any other path is refused. */
  attach(server: Server): void;
  /**
   * Refuses new connections, lets running operations end (bounded by `timeoutMs`: streams end at once
   * when the pipeline interrupts them), then closes every socket with 1001.
   */
  close(timeoutMs: number): Promise<void>;
}

interface RunningOperation {
  readonly kind: OperationTypeNode;
  readonly abort: AbortController;
  /** Its end, for the shutdown's count. */
  readonly done: () => void;
}

/** One socket's state, graphql-ws's `extra`. */
interface Connection {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  /** From the upgrade's Authorization header, or from connectionParams once the connection is initialised. */
  caller?: Caller;
  /** Running operations by id: each one's abort, and its end for the shutdown's count. */
  readonly operations: Map<string, RunningOperation>;
  /** The upgrade's X-Request-Id: its operations' generations are recorded under it. */
  readonly requestId: string;
  /** The upgrade's access-log record (absent without a monitor). */
  readonly log: RequestLog | undefined;
  /** Set when connection_init was refused (its key): the status its line reads instead of 101. */
  refusedWith?: 401;
}

const endpoint = '/graphql';
const GOING_AWAY = 1001;

/**
 * GraphQL over WebSocket (graphql-ws's `graphql-transport-ws` protocol) at /graphql, beside Apollo's
 * HTTP answers on the same path. The API key travels in the upgrade's `Authorization: Bearer` header
 * or, for browsers that cannot set it, as `connectionParams.authorization`; without a valid one the
 * socket closes with 4401. Each operation gets its own request context (caller, the upgrade's request
 * id and access-log record, its own DataLoader, a signal that aborts when the operation completes, is
 * unsubscribed or its socket closes), and the
 * documents are held to /graphql's limits.
 */
export function createGraphQLWsServer(settings: GraphQLWsServerSettings): GraphQLWsServer {
  const { operations, services, apiKeys, logger } = settings;
  const keepAliveMs = settings.keepAliveMs ?? 12_000;
  const running = new InFlightTracker();
  // Made on the first upgrade: `ws` costs ~4 MiB and ~20 ms of start-up that a gateway nobody opens a socket to should not pay.
  let sockets: WebSocketServer | undefined;
  const socketServer = (): WebSocketServer => {
    if (!sockets) {
      const { WebSocketServer: Server } = require('ws') as typeof import('ws');
      sockets = new Server({ noServer: true, maxPayload: settings.maxPayloadBytes, handleProtocols });
      // The 101 carries the request id, as every HTTP answer does, for the connection's access-log line.
      sockets.on('headers', (headers, request) => {
        const requestId = upgradeIds.get(request);
        if (requestId !== undefined) headers.push(`X-Request-Id: ${requestId}`);
      });
    }
    return sockets;
  };
  const connections = new Set<Connection>();
  /** Each upgrade's request id, for its 101. */
  const upgradeIds = new WeakMap<IncomingMessage, string>();
  let closing = false;

  const finish = (connection: Connection, id: string): void => {
    const operation = connection.operations.get(id);
    if (!operation) return;
    connection.operations.delete(id);
    operation.abort.abort();
    operation.done();
  };

  const graphqlWs = makeServer<Record<string, unknown> | undefined, Connection>({
    onConnect: ({ extra, connectionParams }) => {
      if (extra.caller) return true;
      const authentication = authenticateParams(extra.request, connectionParams, apiKeys);
      if (!authentication.ok) {
        extra.refusedWith = 401;
        // Closed here with the reason; graphql-ws's own close (4403, on `false`) then finds it closing.
        extra.socket.close(CloseCode.Unauthorized, refusalMessage(authentication.reason));
        return false;
      }
      extra.caller = authentication.caller;
      if (extra.log) extra.log.callerName = authentication.caller.name;
      return true;
    },
    onSubscribe: ({ extra }, id, payload) => {
      if (!extra.caller) throw new Error('an operation arrived before its connection was authenticated');
      // Shutdown is waiting for the running operations: a new one would only hold it up.
      if (closing) return [shuttingDown('subscribe again (on another replica)')];
      const abort = new AbortController();
      // The connection is the request: its operations share the upgrade's id (the client has it from the
      // 101), so their ledger rows point back to it and its access-log line sums their generations.
      const context = createRequestContext(services, extra.requestId, extra.caller, abort.signal, extra.log);
      const prepared = operations.prepare(payload, context);
      if (!prepared.ok) return prepared.errors;
      // An id the client reuses after completing it: the earlier operation is ended, not left counted forever.
      finish(extra, id);
      extra.operations.set(id, { kind: prepared.kind, abort, done: running.begin() });
      return prepared.args;
    },
    onOperation: ({ extra }, id, _payload, _args, result) => {
      const operation = extra.operations.get(id);
      if (operation && isAsyncGenerator(result)) return abortingOnReturn(result, () => operation.abort.abort());
      return undefined;
    },
    onNext: (_context, _id, _payload, _args, result) => operations.formatResult(result),
    onError: (_context, _id, _payload, errors) => operations.formatErrors(errors),
    onComplete: ({ extra }, id) => finish(extra, id),
    onClose: ({ extra }) => {
      for (const id of [...extra.operations.keys()]) finish(extra, id);
    },
  });

  const accept = (socket: WebSocket, request: IncomingMessage, requestId: string, caller: Caller | undefined, log?: RequestLog): void => {
    const connection: Connection = { socket, request, caller, operations: new Map(), requestId, log };
    connections.add(connection);
    if (log && caller) log.callerName = caller.name;
    // ws closes a socket after a protocol error (a frame too large, say); without a listener the error would throw.
    socket.on('error', (error) => logger.warn({ err: error, requestId }, 'GraphQL WebSocket error'));
    let awaitingPong = false;
    const keepAlive = setInterval(() => {
      if (awaitingPong) return socket.terminate();
      awaitingPong = true;
      socket.ping();
    }, keepAliveMs);
    socket.on('pong', () => {
      awaitingPong = false;
    });
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data) => {
            handle(String(data)).catch((error: unknown) => {
              logger.error({ err: error, requestId }, 'GraphQL WebSocket message failed');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      connection,
    );
    socket.once('close', (code, reason) => {
      // 1006: no close frame came (a client that vanished, or one cut for missing its pings).
      // Decided here, not read from the close code, which the client sends back (or not).
      if (log) settings.monitor?.end(log, connection.refusedWith ?? 101, connection.refusedWith === undefined && code === 1006);
      connections.delete(connection);
      clearInterval(keepAlive);
      // Before graphql-ws returns the subscriptions: operations still waiting for their upstream stop too.
      for (const operation of connection.operations.values()) operation.abort.abort();
      closed(code, String(reason)).catch((error: unknown) => logger.error({ err: error, requestId }, 'GraphQL WebSocket cleanup failed'));
    });
  };

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const requestId = requestIdOf(request);
    const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
    const log = settings.monitor?.begin(requestId, request.method ?? 'GET');
    // Never the raw path as a label.
    if (log) log.route = pathname === endpoint ? endpoint : 'unmatched';
    const refuse = (status: number, code: string, message: string, headers: Record<string, string> = {}): void => {
      refuseUpgrade(socket, status, code, message, { 'x-request-id': requestId, ...headers });
      if (log) settings.monitor?.end(log, status, false);
    };
    if (pathname !== endpoint) return refuse(404, 'not_found', `No WebSocket endpoint at ${pathname}; use ${endpoint}`);
    if (closing) return refuse(503, 'service_unavailable', 'The server is shutting down');
    // A key in the upgrade's header is checked now; without one, connectionParams must carry it.
    let caller: Caller | undefined;
    if (request.headers.authorization !== undefined || !apiKeys.enabled) {
      const authentication = authenticate(request, apiKeys);
      if (!authentication.ok) {
        return refuse(401, 'unauthorized', refusalMessage(authentication.reason), { 'www-authenticate': 'Bearer realm="llmop"' });
      }
      caller = authentication.caller;
    }
    upgradeIds.set(request, requestId);
    let accepted = false;
    socketServer().handleUpgrade(request, socket, head, (webSocket) => {
      accepted = true;
      accept(webSocket, request, requestId, caller, log);
    });
    // ws answers or drops a handshake it refuses before returning (nothing of ours is asynchronous in it):
    // ended with its answer, 405 for a method other than GET and 400 for a bad Sec-WebSocket-* or Upgrade
    // header; destroyed unanswered when the client had already left.
    if (!accepted && log) {
      const answered = socket.writableEnded;
      settings.monitor?.end(log, answered ? (request.method === 'GET' ? 400 : 405) : 499, !answered);
    }
  };

  return {
    attach: (server) => {
      server.on('upgrade', onUpgrade);
    },
    close: async (timeoutMs) => {
      closing = true;
      // Subscriptions could outlast any wait (a run's progress): each ends now. Generation streams, already
      // interrupted by the pipeline, still send their error event; queries and mutations run to their end.
      for (const connection of connections) {
        for (const operation of connection.operations.values()) if (operation.kind === 'subscription') operation.abort.abort();
      }
      await running.waitForIdle(timeoutMs);
      // graphql-ws calls onComplete before it sends the `complete` message: let that go out first.
      await new Promise((resolve) => setImmediate(resolve));
      if (!sockets) return;
      const server = sockets;
      const open = [...server.clients];
      for (const socket of open) socket.close(GOING_AWAY, 'The server is shutting down');
      // A client that does not answer the close handshake is cut after a second.
      await Promise.all(open.map((socket) => closedWithin(socket, 1000)));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const refusalMessage = (reason: 'missing' | 'invalid'): string =>
  reason === 'missing'
    ? 'An API key is required: send Authorization: Bearer <api key>, or connectionParams.authorization'
    : 'The API key is not valid';

/**
 * The key from connection_init's payload (`authorization: "Bearer <key>"`, in any case: GraphiQL sends
 * its headers as they are written), checked as `authenticate` checks the header it reads.
 */
function authenticateParams(
  request: IncomingMessage,
  connectionParams: Readonly<Record<string, unknown>> | undefined,
  apiKeys: ApiKeyRegistry,
): Authentication {
  const entry = Object.entries(connectionParams ?? {}).find(([name]) => name.toLowerCase() === 'authorization');
  const authorization = typeof entry?.[1] === 'string' ? entry[1] : undefined;
  if (authorization === undefined) return { ok: false, reason: 'missing' };
  // The upgrade request, its socket included, with this as its Authorization header.
  const withKey: IncomingMessage = Object.create(request, { headers: { value: { ...request.headers, authorization } } });
  return authenticate(withKey, apiKeys);
}

function isAsyncGenerator(value: unknown): value is AsyncGenerator<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value && typeof Reflect.get(value, 'return') === 'function';
}

/**
 * The operation's events, with a `return` that aborts the operation's signal before returning them. An
 * async generator's return waits for its pending step, here the next upstream chunk; the signal stops
 * the upstream call at once.
 */
function abortingOnReturn<T>(events: AsyncGenerator<T>, abort: () => void): AsyncGenerator<T> {
  const wrapped: AsyncIterableIterator<T> & Pick<AsyncGenerator<T>, 'return' | 'throw'> = {
    next: (...value) => events.next(...value),
    return: (value) => {
      abort();
      return events.return(value);
    },
    throw: (error) => events.throw(error),
    [Symbol.asyncIterator]: () => wrapped,
  };
  // The build's and the tests' type libraries disagree on whether an AsyncGenerator has Symbol.asyncDispose; graphql-ws uses neither.
  return wrapped as AsyncGenerator<T>;
}

function closedWithin(socket: WebSocket, timeoutMs: number): Promise<void> {
  if (socket.readyState === socket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.terminate();
      resolve();
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function refuseUpgrade(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
