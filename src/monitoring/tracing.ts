import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { DiagLogger } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { AppConfig } from '../config';
import type { Logger } from '../logger';

/**
 * OpenTelemetry traces over OTLP/HTTP, started by main.ts before the app's modules load (the
 * instrumentations patch `http` and `graphql` as they are required). Every OpenTelemetry package
 * but the API is required here, and only when an endpoint is configured: without one nothing of
 * the SDK is loaded and the API's tracer stays a no-op.
 *
 * A request's trace: the HTTP server span (continuing an incoming `traceparent`), the GraphQL
 * operation's spans (parse, validate, execute, and the root fields' resolvers; REST runs the same
 * operations), one span per generation (generation-spans.ts) and the upstream HTTP call (undici's
 * diagnostics channels; the call carries `traceparent`, so the upstream's own spans join the trace).
 */
export interface Tracing {
  /**
   * Runs `work` (the app's start-up) with tracing suppressed, for it and for whatever it leaves running:
   * start-up parses the schema and its documents, each of which would otherwise be a trace of its own.
   * Requests are traced all the same: each starts from its own context.
   */
  untraced<T>(work: () => T): T;
  /** Exports the spans still buffered; resolves once they are sent, refused or the export deadline passes. */
  shutdown(): Promise<void>;
}

const tracingOff: Tracing = { untraced: (work) => work(), shutdown: async () => undefined };

/** Scrapes and probes come every few seconds and tell nothing a trace would: they are not traced. */
const untracedPaths = new Set(['/metrics', '/api/v1/health', '/api/v1/ready']);

/**
 * The longest a shutdown waits for the last export, after the requests have drained. A collector that
 * is up answers in milliseconds; one that is down would otherwise hold the exit for the exporter's
 * whole timeout and retries (10 s).
 */
const exportDeadlineMs = 5_000;

/** Starts tracing when `settings.tracesUrl` is set; without it, nothing is loaded and the returned Tracing does nothing. */
/**
 * @param upstreamOrigins the providers' origins: only calls to them are traced (and carry `traceparent`);
 * a budget alert's webhook, whose URL may hold a token, is not.
 */
export function startTracing(settings: AppConfig['tracing'], version: string, logger: Logger, upstreamOrigins: readonly string[]): Tracing {
  if (settings.tracesUrl === undefined) return tracingOff;
  const { context, diag, DiagLogLevel } = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const { NodeSDK, core, resources } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { GraphQLInstrumentation } =
    require('@opentelemetry/instrumentation-graphql') as typeof import('@opentelemetry/instrumentation-graphql');
  const { UndiciInstrumentation } =
    require('@opentelemetry/instrumentation-undici') as typeof import('@opentelemetry/instrumentation-undici');

  const tracedOrigins = new Set(upstreamOrigins);
  // The SDK's own warnings (a collector that refuses or cannot be reached) go to our log; OTEL_LOG_LEVEL overrides.
  diag.setLogger(diagLogger(logger.child({ component: 'opentelemetry' })), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });

  const sdk = new NodeSDK({
    serviceName: settings.serviceName,
    resource: resources.defaultResource().merge(resources.resourceFromAttributes({ 'service.version': version })),
    traceExporter: withoutGraphQLErrorText(createExporter(settings)),
    // Traces only: the SDK would otherwise also push metrics and logs to the same collector (metrics are /metrics).
    metricReaders: [],
    logRecordProcessors: [],
    // W3C trace context only: a client's `baggage` header is not forwarded to the upstream providers.
    textMapPropagator: new core.W3CTraceContextPropagator(),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request: IncomingMessage) => untracedPaths.has(pathOf(request.url)),
        // Our own outgoing calls go through undici; a node:http call outside any request is not worth a trace.
        requireParentforOutgoingSpans: true,
      }),
      new GraphQLInstrumentation({
        // The operation (parse, validate, execute) and its root fields' resolvers: a span per nested field
        // of a list would cost more than it shows. Literal values (prompts) never reach an attribute.
        depth: 1,
        ignoreTrivialResolveSpans: true,
        mergeItems: true,
        allowValues: false,
      }),
      // Upstream calls use undici.request on an Agent; undici publishes every request on its diagnostics
      // channels, where this instrumentation starts the client span and adds `traceparent` to the request.
      // Calls outside a request (model discovery every DISCOVERY_INTERVAL_MS) would each start a trace of
      // their own: they are not traced.
      new UndiciInstrumentation({
        requireParentforSpans: true,
        ignoreRequestHook: (request) => !tracedOrigins.has(request.origin),
      }),
    ],
  });
  sdk.start();
  logger.info({ traces: redactedUrl(settings.tracesUrl), protocol: settings.protocol }, 'exporting traces over OTLP');

  let closing: Promise<void> | undefined;
  const shutdown = async (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), exportDeadlineMs);
    });
    try {
      const outcome = await Promise.race([sdk.shutdown().then(() => 'exported' as const), deadline]);
      if (outcome === 'deadline') logger.warn({ timeoutMs: exportDeadlineMs }, 'the last spans were not exported in time');
    } catch (error) {
      logger.warn({ err: error }, 'the last spans could not be exported');
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    untraced: (work) => context.with(core.suppressTracing(context.active()), work),
    shutdown: () => (closing ??= shutdown()),
  };
}

/** OTLP/HTTP with protobuf (OpenTelemetry's default) or JSON bodies; both exporters are the SDK's own, of its version. */
function createExporter(settings: AppConfig['tracing']): SpanExporter {
  const options = { url: settings.tracesUrl, headers: { ...settings.headers } };
  if (settings.protocol === 'http/json') {
    const { OTLPTraceExporter } =
      require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter(options);
  }
  // A dependency of sdk-node (not of LLMOP): resolved from sdk-node, wherever npm placed it.
  const sdkDirectory = path.dirname(require.resolve('@opentelemetry/sdk-node'));
  const { OTLPTraceExporter } = require(
    require.resolve('@opentelemetry/exporter-trace-otlp-proto', { paths: [sdkDirectory] }),
  ) as typeof import('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter(options);
}

/**
 * graphql-js's error messages quote the document: a parse or validation error can hold a prompt written
 * into it as a literal. GraphQL spans keep their error status and the exception's type, not its text.
 */
function withoutGraphQLErrorText(exporter: SpanExporter): SpanExporter {
  const scrubbed = (span: ReadableSpan): ReadableSpan => {
    if (!span.name.startsWith('graphql.')) return span;
    const events = span.events.map((event) =>
      event.name === 'exception'
        ? { ...event, attributes: { 'exception.type': event.attributes?.['exception.type'] ?? 'GraphQLError' } }
        : event,
    );
    return Object.create(span, { events: { value: events }, status: { value: { code: span.status.code } } }) as ReadableSpan;
  };
  return {
    export: (spans, done) => exporter.export(spans.map(scrubbed), done),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}

function pathOf(url: string | undefined): string {
  const end = url?.search(/[?#]/) ?? -1;
  return url === undefined ? '/' : end === -1 ? url : url.slice(0, end);
}

/** A URL as logged: no credentials, no query. */
function redactedUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

function diagLogger(logger: Logger): DiagLogger {
  const write =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]): void => {
      const error = args.find((arg) => arg instanceof Error) ?? serializedError(message);
      if (error) logger[level]({ code: (error as { code?: unknown }).code }, `OpenTelemetry: ${error.message}`);
      else logger[level](`OpenTelemetry: ${message}`);
    };
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('trace') };
}

/** The SDK's global error handler hands diag an error as JSON (a failed export: the collector refused or is down). */
function serializedError(message: string): { message: string } | undefined {
  if (!message.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(message) as { message?: unknown };
    return typeof parsed.message === 'string' ? { ...parsed, message: parsed.message } : undefined;
  } catch {
    return undefined;
  }
}
