import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { ApiKeyRegistry, readApiKeysFile } from './auth/api-keys';
import type { AppConfig } from './config';
import type { RequestContext, Services } from './context';
import { executionStatusPlugin } from './errors/execution-status.plugin';
import { createGraphQLErrorFormatter } from './errors/format-error';
import { GraphQLOperations } from './http/graphql-operations';
import { createGraphQLSseHandler } from './http/graphql-sse-handler';
import { createGraphQLWsServer } from './http/graphql-ws-server';
import { createLogger, type Logger } from './logger';
import { createRateLimitMiddleware } from './middlewares/rate-limit.middleware';
import { OperationRateLimiter } from './middlewares/operation-rate-limiter';
import { createRateLimitStore } from './pipeline/admission/create-rate-limit-store';
import { RateLimiter } from './pipeline/admission/rate-limiter';
import { createProviderRegistry } from './providers/create-providers';
import type { ProviderRegistry } from './providers/registry';
import { defaultContractPath, OpenApiContract } from './rest/openapi-contract';
import { createRestHandler } from './rest/rest-handler';
import { buildGatewaySchemas } from './schema';
import { createWebPages } from './web/web-pages';
import { createOpenAIHandler } from './openai-api/openai-api-handler';
import { createHttpServer, type HttpServer } from './server';
import { GenerationPipeline } from './pipeline/generation-pipeline';
import { GenerationRecorder } from './pipeline/generation-record';
import { unrecordedLedger } from './pipeline/generation-ledger';
import { createAccessLog } from './monitoring/access-log';
import { evaluationCaseTracer, GEN_AI_PROVIDER_NAMES, traceGenerations } from './monitoring/generation-spans';
import { GatewayMetrics } from './monitoring/metrics';
import { createMetricsHandler } from './monitoring/metrics.route';
import { RequestMonitor } from './monitoring/request-monitor';
import { Endpoints } from './pipeline/routing/endpoints';
import { Router } from './pipeline/routing/router';
import { fallbacksOf, uncataloguedFallbacks } from './model-catalog';
import { BudgetAlerts } from './services/budget-alerts';
import { BudgetService } from './services/budget.service';
import { CompareService } from './services/compare.service';
import { DashboardService } from './services/dashboard.service';
import { DatasetService } from './services/dataset.service';
import { EvaluationService } from './services/evaluation.service';
import { openBullCaseQueue } from './jobs/bullmq-case-queue';
import { EvaluationRunner } from './jobs/evaluation-runner';
import { InProcessCaseQueue } from './jobs/in-process-case-queue';
import { FeedbackService } from './services/feedback.service';
import { ModelService } from './services/model.service';
import { PromptService } from './services/prompt.service';
import { LedgerService } from './services/ledger.service';
import { SystemStatusService } from './services/system-status.service';
import { openLedger } from './storage/open-ledger';

export interface App {
  readonly config: AppConfig;
  readonly logger: Logger;
  readonly registry: ProviderRegistry;
  /** Every generation's path; its recorder hands each finished generation to its listeners. */
  readonly pipeline: GenerationPipeline;
  readonly http: HttpServer;
  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  /** Opens the access-log file again at its path (SIGHUP, after logrotate moved it); nothing for stdout or off. */
  reopenAccessLog(): void;
  /** Stops accepting, lets in-flight requests finish (bounded by SHUTDOWN_TIMEOUT_MS), then releases everything. */
  close(): Promise<void>;
}

/**
 * During an outage every refused generation reports the same failure: log the first at once, then
 * one line per interval with how many were not logged.
 */
function throttledErrorLog(logger: Logger, message: string, intervalMs: number): (error: unknown) => void {
  let lastLoggedAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - lastLoggedAt < intervalMs) {
      suppressed += 1;
      return;
    }
    logger.error({ err: error, ...(suppressed > 0 ? { suppressed } : {}) }, message);
    lastLoggedAt = now;
    suppressed = 0;
  };
}

/** Composition root: config (with its catalog) -> providers -> pipeline and services -> schema -> HTTP. */
export async function createApp(config: AppConfig, logger: Logger = createLogger(config.logLevel)): Promise<App> {
  const apiKeys = new ApiKeyRegistry([...config.auth.inlineKeys, ...(config.auth.keysFile ? readApiKeysFile(config.auth.keysFile) : [])]);
  const startupWarnings = [
    ...(apiKeys.enabled
      ? []
      : ['authentication is off: no API_KEYS or API_KEYS_FILE configured, so anyone who can reach this port can spend on its providers']),
    ...(config.ledger.enabled ? [] : ['the ledger is off (LEDGER=off): generations are not recorded; use it only to benchmark']),
    ...uncataloguedFallbacks(config.catalog),
  ];
  for (const warning of startupWarnings) logger.warn(warning);
  const rateLimitStore = createRateLimitStore(config.rateLimits, logger);
  // Read when scraped: the HTTP server and the router exist by then.
  const metrics = new GatewayMetrics({
    inFlightRequests: () => http.inFlight.size,
    endpoints: () =>
      registry.providers.map((provider) => ({
        name: provider.name,
        queued: provider.queueDepth?.() ?? 0,
        breaker: router.endpoints.breakerState(provider.name),
      })),
  });
  const rateLimiter = new OperationRateLimiter(config.rateLimits, new RateLimiter(rateLimitStore, config.rateLimits.windowMs), logger, () =>
    metrics.refused('rate_limit'),
  );
  // The embedded ledger lives here, and readiness checks its free space: it must exist whatever the ledger's store.
  mkdirSync(config.dataDir, { recursive: true });
  let alerts: BudgetAlerts | undefined;
  const ledger = await openLedger({
    ...config.ledger,
    longestGenerationMs: config.upstream.timeoutMs,
    onBackgroundError: (message) => logger.error(`ledger: ${message}`),
    // The SQL text only: parameters hold prompts and answers.
    onQuery: logger.isLevelEnabled('trace') ? (sql, durationMs) => logger.trace({ sql, durationMs }, 'ledger query') : undefined,
    onBudgetSettled: (counters, addedUnits) => alerts?.observe(counters, addedUnits),
  });
  if (ledger.budgets && config.budgetAlerts.webhookUrl) {
    alerts = new BudgetAlerts({
      webhookUrl: config.budgetAlerts.webhookUrl,
      budgets: ledger.budgets,
      logger,
      retryBaseMs: config.budgetAlerts.retryBaseMs,
      maxAttempts: 8,
      timeoutMs: 5000,
    });
  }
  logger.info({ ledger: ledger.kind, contentRecorded: config.ledger.recordContent }, 'ledger open');
  const registry = createProviderRegistry(config, logger);
  const onLedgerError = throttledErrorLog(logger, 'the ledger database failed', 10_000);
  const recorder = new GenerationRecorder((error) => logger.error({ err: error }, 'a generation record listener failed'));
  if (config.tracing.tracesUrl !== undefined) {
    const apiOf = new Map(config.catalog.models.map((entry) => [entry.id, entry.api]));
    const kindOf = new Map(registry.providers.map((provider) => [provider.name, provider.kind]));
    traceGenerations(recorder, {
      apiOf: (modelId) => apiOf.get(modelId),
      providerNameOf: (endpoint) => GEN_AI_PROVIDER_NAMES[kindOf.get(endpoint) ?? ''],
    });
  }
  const router = new Router(
    registry,
    new Endpoints({
      failureThreshold: config.upstream.breakerFailures,
      halfOpenAfterMs: config.upstream.breakerHalfOpenMs,
      now: () => performance.now(),
    }),
    fallbacksOf(config.catalog),
  );
  const onMisconfiguredEndpoint = throttledErrorLog(logger, "an upstream refused the gateway's credentials: check its API key", 10_000);
  const pipeline = new GenerationPipeline({
    router,
    onMisconfiguredEndpoint,
    ledger: ledger.repository ?? unrecordedLedger,
    budgets: ledger.budgets,
    onLedgerError,
    recorder,
    onBudgetRefused: () => metrics.refused('budget'),
    timeoutMs: config.upstream.timeoutMs,
    retry: {
      maxRetries: config.upstream.maxRetries,
      baseDelayMs: config.upstream.retryBaseMs,
      maxDelayMs: config.upstream.retryBaseMs * 20,
      retryAfterMaxMs: config.upstream.retryAfterMaxMs,
      attemptTimeoutMs: config.upstream.attemptTimeoutMs,
      random: Math.random,
    },
  });
  const models = new ModelService(registry);
  const runner = await startEvaluationRunner(config, ledger, pipeline, logger, (status) => metrics.evaluationCell(status));
  const services: Services = {
    generation: pipeline,
    models,
    ledger: new LedgerService(ledger.repository, onLedgerError),
    budgets: new BudgetService(ledger.budgets, onLedgerError),
    feedback: new FeedbackService(ledger.feedback, onLedgerError),
    compare: new CompareService(pipeline, registry),
    prompts: new PromptService(ledger.prompts, models, pipeline, onLedgerError),
    datasets: new DatasetService(ledger.datasets, onLedgerError),
    evaluations: new EvaluationService(
      ledger.evaluations && ledger.prompts && ledger.datasets
        ? { evaluations: ledger.evaluations, prompts: ledger.prompts, datasets: ledger.datasets }
        : undefined,
      runner,
      router,
      onLedgerError,
      config.evaluations.progressIntervalMs,
    ),
    status: new SystemStatusService(registry, {
      breakerStateOf: (providerName) => router.endpoints.breakerState(providerName),
      ledgerReachable: ledger.ping,
      version: config.version,
      dataDir: config.dataDir,
      minMemoryBytes: config.readiness.minMemoryBytes,
      minDiskBytes: config.readiness.minDiskBytes,
      startupWarnings,
    }),
    dashboard: new DashboardService(ledger.repository, onLedgerError),
  };
  const schemas = await buildGatewaySchemas(logger, [createRateLimitMiddleware(rateLimiter)]);
  const armor = new ApolloArmor({
    maxDepth: { n: config.graphql.maxDepth },
    maxAliases: { n: config.graphql.maxAliases },
    // Enforced by graphql-js's parser instead (parseOptions below): armor's token plugin re-parses in a
    // hook whose errors Apollo turns into 500s, for every syntax error.
    maxTokens: { enabled: false },
    costLimit: { maxCost: config.graphql.maxCost },
    maxDirectives: { n: config.graphql.maxDirectives },
    // Suggestions are dropped by the error formatter instead: armor's plugin is a hook on every request.
    blockFieldSuggestion: { enabled: false },
  }).protect();
  const formatError = createGraphQLErrorFormatter({ hideSuggestions: !config.graphql.introspection });
  const apollo = new ApolloServer<RequestContext>({
    schema: schemas.subgraph,
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: config.graphql.introspection,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    parseOptions: { maxTokens: config.graphql.maxTokens },
    validationRules: armor.validationRules,
    // main.ts owns the signals: Apollo's handler would re-raise them and skip our drain.
    stopOnTerminationSignals: false,
    // No cache hints in this schema, and Apollo's cache-control plugin would instrument every field of every
    // request to compute one; the GraphQL handler sends `cache-control: no-store` as the plugin did.
    plugins: [ApolloServerPluginLandingPageDisabled(), ApolloServerPluginCacheControlDisabled(), executionStatusPlugin, ...armor.plugins],
    logger,
  });
  await apollo.start();
  const restHandler = createRestHandler({
    schema: schemas.plain,
    contract: new OpenApiContract(defaultContractPath),
    maxBodyBytes: config.maxBodyBytes,
    logger,
    rateLimiter,
    streamHeartbeatMs: config.streamHeartbeatMs,
    // Off while tracing: OpenTelemetry sees GraphQL operations only through graphql-js's execute.
    compileOperations: config.tracing.tracesUrl === undefined,
  });
  const webPages = createWebPages({ version: config.version, authEnabled: apiKeys.enabled });
  const openAIHandler = createOpenAIHandler({
    rateLimiter,
    maxBodyBytes: config.maxBodyBytes,
    streamHeartbeatMs: config.streamHeartbeatMs,
    logger,
  });
  // Subscriptions (and any operation) over SSE and WebSocket, held to /graphql's limits and error codes.
  const operations = new GraphQLOperations({
    schema: schemas.subgraph,
    maxTokens: config.graphql.maxTokens,
    validationRules: armor.validationRules,
    introspection: config.graphql.introspection,
    formatError,
  });
  const graphqlSse = createGraphQLSseHandler({ operations, maxBodyBytes: config.maxBodyBytes, logger });
  const accessLog = createAccessLog(config.accessLog, config.accessLogFlushMs, (message, error) => logger.error({ err: error }, message));
  const monitor = new RequestMonitor(recorder, metrics, accessLog);
  const http = createHttpServer({
    apollo,
    services,
    maxBodyBytes: config.maxBodyBytes,
    logger,
    restHandler,
    apiKeys,
    webPages,
    openAIHandler,
    graphqlSseHandler: graphqlSse.handle,
    monitor,
    metricsHandler: createMetricsHandler(metrics, { public: config.metrics.public || !apiKeys.enabled }),
  });
  const graphqlWs = createGraphQLWsServer({ operations, services, apiKeys, maxPayloadBytes: config.maxBodyBytes, logger, monitor });
  graphqlWs.attach(http.server);

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    try {
      http.beginDraining();
      const stopped = new Promise<void>((resolve) => http.server.close(() => resolve()));
      http.server.closeIdleConnections();
      // Open streams could outlast any drain: each ends now with an error event, its row recorded.
      pipeline.interruptStreams();
      // Subscriptions over SSE and WebSocket end too (a run's progress would outlast any drain); then the
      // WebSockets close, which the HTTP server's close awaits.
      graphqlSse.endSubscriptions();
      const webSocketsClosed = graphqlWs.close(config.shutdownTimeoutMs);
      const drained = await http.inFlight.waitForIdle(config.shutdownTimeoutMs);
      if (!drained) logger.warn({ inFlight: http.inFlight.size }, 'shutdown timeout reached; closing remaining connections');
      http.server.closeAllConnections();
      await webSocketsClosed;
      await stopped;
      // A stream whose client stopped reading is recorded once its connection is closed: before the ledger closes.
      if (!(await pipeline.streamsSettled(config.shutdownTimeoutMs))) logger.warn('shutdown timeout reached; streams left unrecorded');
      // Cells in flight are aborted (their rows cancelled) and redone by whoever resumes the run.
      await runner?.close();
      await Promise.all([apollo.stop(), registry.close(), rateLimitStore.close()]);
      // Last: every answered generation's row is committed before the database closes.
      await alerts?.close();
      await ledger.close();
    } finally {
      // Even when a step above failed: the lines waiting to be written are the only account of the last requests.
      await accessLog?.close();
    }
  };

  return {
    config,
    logger,
    registry,
    pipeline,
    http,
    listen: () =>
      new Promise((resolve, reject) => {
        http.server.once('error', reject);
        http.server.listen(config.port, config.host, () => {
          http.server.off('error', reject);
          resolve(http.server.address() as AddressInfo);
        });
      }),
    reopenAccessLog: () => accessLog?.reopen(),
    close: () => (closing ??= close()),
  };
}

/**
 * Evaluation runs, resumed where a previous process left them: cases in this process, or in BullMQ
 * on REDIS_URL shared by every replica. None when the ledger is off (runs live in its database).
 */
async function startEvaluationRunner(
  config: AppConfig,
  ledger: Awaited<ReturnType<typeof openLedger>>,
  pipeline: GenerationPipeline,
  logger: Logger,
  onCellRecorded: (status: 'passed' | 'failed' | 'error') => void,
): Promise<EvaluationRunner | undefined> {
  const { evaluations, prompts, datasets } = ledger;
  if (!evaluations || !prompts || !datasets) return undefined;
  const { concurrency, leaseMs, redisUrl } = config.evaluations;
  const runner = new EvaluationRunner({
    evaluations,
    prompts,
    datasets,
    pipeline,
    logger,
    concurrency,
    leaseMs,
    recordContent: config.ledger.recordContent,
    ownsDatabase: ledger.kind === 'sqlite',
    onCellRecorded,
    ...(config.tracing.tracesUrl === undefined ? {} : { traceCase: evaluationCaseTracer() }),
  });
  const queue = redisUrl
    ? await openBullCaseQueue(
        { redisUrl, concurrency, leaseMs, onError: throttledErrorLog(logger, 'evaluation queue (Redis) error', 30_000) },
        runner.processCase,
      )
    : new InProcessCaseQueue(runner.processCase, concurrency, runner.caseFailed);
  await runner.start(queue);
  return runner;
}
