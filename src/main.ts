import 'reflect-metadata';
import { ApiKeysFileError } from './auth/api-keys';
import { type AppConfig, ConfigError, loadConfig } from './config';
import { createLogger, type Logger } from './logger';
import { startTracing } from './monitoring/tracing';
import { LedgerInUseError } from './storage/sqlite-owner-lock';
import { DatabaseSchemaTooNewError } from './storage/storage-errors';

/** Starts the server (src/start.ts runs it); resolves once it listens, with its logger. */
export async function main(): Promise<Logger> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  // Before the app's modules load: OpenTelemetry's instrumentations patch `http` and `graphql` as they are
  // required. Without OTEL_EXPORTER_OTLP_ENDPOINT nothing of the SDK is loaded.
  const upstreamOrigins = [
    config.openai.baseURL ?? 'https://api.openai.com',
    ...config.catalog.endpoints.map((endpoint) => endpoint.base_url),
  ].map((url) => new URL(url).origin);
  const tracing = startTracing(config.tracing, config.version, logger, upstreamOrigins);
  const { createApp } = require('./app') as typeof import('./app');
  const app = await tracing
    .untraced(() => createApp(config, logger))
    .catch((error: unknown) => {
      if (
        error instanceof ConfigError ||
        error instanceof ApiKeysFileError ||
        error instanceof DatabaseSchemaTooNewError ||
        error instanceof LedgerInUseError
      ) {
        process.stderr.write(`${error.message}\n`);
        process.exit(1);
      }
      throw error;
    });
  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    app
      .close()
      // Last, so the spans of the requests that drained are exported too.
      .then(() => tracing.shutdown())
      .then(() => {
        logger.info('shutdown complete');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  // `on`, not `once`: signal-exit (a dependency of node-llama-cpp) re-raises a signal that no other
  // listener is left to handle, which would kill the process mid-drain. close() is idempotent.
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // logrotate's `postrotate` (after moving the file away; no copytruncate needed): the access log opens
  // its file again at its path. Without a listener SIGHUP would end the process. No SIGHUP on Windows.
  if (process.platform !== 'win32') {
    process.on('SIGHUP', () => {
      logger.info({ signal: 'SIGHUP' }, 'reopening the access log');
      app.reopenAccessLog();
    });
  }

  // Handlers first: a signal that arrives as soon as we announce the port must still drain.
  const address = await app.listen();
  logger.info(
    { url: `http://${address.address}:${address.port}`, graphql: `http://${address.address}:${address.port}/graphql` },
    'LLMOP is listening',
  );
  return logger;
}

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}\n`);
});

/** What a start that failed does: one line, no stack trace, exit code 1. */
export function exitOnStartFailure(error: unknown): never {
  process.stderr.write(`LLMOP failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

// `node dist/src/main.js` (unbundled, without src/start.ts's heap sizing and code cache) still starts the
// server. Inside the bundle `module` is esbuild's own object, never require.main, so this stays quiet there.
if (require.main === module) main().catch(exitOnStartFailure);
