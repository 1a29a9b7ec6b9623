import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { projectRoot } from './project-root';
import { sha256Hex, type HashedApiKey } from './auth/api-keys';
import { ConfigError } from './config-error';
import { loadModelCatalog, type ModelCatalog } from './model-catalog';

export { ConfigError };

const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

/** OTLP over HTTP only: `grpc` is refused rather than silently sent somewhere else. */
const otlpProtocol = z.enum(['http/protobuf', 'http/json'], {
  error: 'must be http/protobuf or http/json (LLMOP exports traces over OTLP/HTTP; grpc is not supported)',
});

/** Where the access log goes: ACCESS_LOG=off, stdout (the default), or a file path. */
export type AccessLogDestination =
  | { readonly kind: 'off' }
  | { readonly kind: 'stdout' }
  | { readonly kind: 'file'; readonly path: string };

function accessLogDestinationOf(value: string): AccessLogDestination {
  if (value === 'off') return { kind: 'off' };
  if (value === 'stdout') return { kind: 'stdout' };
  return { kind: 'file', path: value };
}

const environmentSchema = z.object({
  PORT: integer(5000, 0, 65535),
  HOST: z.string().min(1).default('127.0.0.1'),
  OPENAI_API_KEY: optionalText,
  OPENAI_BASE_URL: optionalText.pipe(z.url().optional()),
  MODEL_CATALOG: optionalText,
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: optionalText.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  LEDGER: z.enum(['on', 'off']).default('on'),
  LEDGER_CONTENT: z.enum(['true', 'false']).default('true'),
  UPSTREAM_TIMEOUT_MS: integer(60_000, 1),
  UPSTREAM_MAX_RETRIES: integer(2, 0, 10),
  UPSTREAM_RETRY_BASE_MS: integer(100, 1, 60_000),
  UPSTREAM_RETRY_AFTER_MAX_MS: integer(10_000, 0, 600_000),
  UPSTREAM_ATTEMPT_TIMEOUT_MS: integer(0, 0),
  BREAKER_FAILURES: integer(5, 1, 1000),
  BREAKER_HALF_OPEN_MS: integer(10_000, 10, 30_000),
  // Per endpoint and replica. Hosted APIs and servers like vLLM take hundreds of calls at once; a
  // smaller number queues interactive calls in the gateway (set an endpoint's `concurrency` for a small server).
  PROVIDER_CONCURRENCY: integer(64, 1, 256),
  PROVIDER_QUEUE_LIMIT: integer(1000, 0),
  DISCOVERY_INTERVAL_MS: integer(30_000, 100),
  DISCOVERY_TIMEOUT_MS: integer(5_000, 1),
  SHUTDOWN_TIMEOUT_MS: integer(10_000, 0),
  READY_MIN_MEMORY_MB: integer(64, 0),
  READY_MIN_DISK_MB: integer(100, 0),
  MAX_BODY_BYTES: integer(1_048_576, 1024),
  STREAM_HEARTBEAT_MS: integer(15_000, 10),
  MODELS_DIR: z.string().min(1).default('./models'),
  LOCAL_THREADS: integer(Math.max(1, os.availableParallelism() - 1), 1, 1024),
  LOCAL_GPU: z.enum(['true', 'false']).default('false'),
  LOCAL_SEQUENCES: integer(4, 1, 64),
  LOCAL_CONTEXT_SIZE: integer(4096, 64),
  LOCAL_BATCH_SIZE: integer(512, 1),
  LOCAL_PRELOAD: z.string().default(''),
  LOCAL_IDLE_UNLOAD_MS: integer(900_000, 0),
  API_KEYS: optionalText,
  API_KEYS_FILE: optionalText,
  RATE_LIMIT_GENERATE: integer(100, 1),
  RATE_LIMIT_GENERATE_BATCH: integer(10, 1),
  RATE_LIMIT_DEFAULT: integer(1000, 1),
  RATE_LIMIT_WINDOW_MS: integer(60_000, 100),
  REDIS_URL: optionalText.pipe(z.url().optional()),
  EVAL_CONCURRENCY: integer(4, 1, 256),
  EVAL_LEASE_MS: integer(30_000, 500),
  EVAL_PROGRESS_INTERVAL_MS: integer(1000, 10),
  BUDGET_WEBHOOK_URL: optionalText.pipe(z.url().optional()),
  BUDGET_WEBHOOK_RETRY_MS: integer(1000, 1),
  INTROSPECTION: z.enum(['true', 'false']).default('true'),
  GRAPHQL_MAX_DEPTH: integer(8, 1),
  GRAPHQL_MAX_ALIASES: integer(15, 0),
  GRAPHQL_MAX_TOKENS: integer(2000, 1),
  GRAPHQL_MAX_COST: integer(5000, 1),
  GRAPHQL_MAX_DIRECTIVES: integer(50, 0),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ACCESS_LOG: z.string().min(1).default('stdout').transform(accessLogDestinationOf),
  ACCESS_LOG_FLUSH_MS: integer(100, 0, 60_000),
  METRICS_PUBLIC: z.enum(['true', 'false']).default('false'),
  // OpenTelemetry's own names (https://opentelemetry.io/docs/specs/otel/protocol/exporter/), so a collector's usual settings apply.
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalText.pipe(z.url().optional()),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalText.pipe(z.url().optional()),
  OTEL_EXPORTER_OTLP_PROTOCOL: optionalText.pipe(otlpProtocol.optional()),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: optionalText.pipe(otlpProtocol.optional()),
  OTEL_EXPORTER_OTLP_HEADERS: optionalText,
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: optionalText,
  OTEL_SERVICE_NAME: optionalText,
});

export interface AppConfig {
  readonly port: number;
  readonly host: string;
  readonly openai: {
    /** Read by the openai provider at call time; never logged. */
    readonly apiKey: string | undefined;
    readonly baseURL: string | undefined;
  };
  /** The committed default catalog with the user's (MODEL_CATALOG) merged over it. */
  readonly catalog: ModelCatalog;
  /** Directory whose file system `status` reports and `ready` checks; the embedded ledger lives here. */
  readonly dataDir: string;
  readonly budgetAlerts: {
    /** Where 50/80/100% events are POSTed; none without it. May carry a token: never logged. */
    readonly webhookUrl: string | undefined;
    /** The first retry's delay; each next one doubles. */
    readonly retryBaseMs: number;
  };
  readonly ledger: {
    /** False only for benchmarks (LEDGER=off): nothing is recorded. */
    readonly enabled: boolean;
    /** PostgreSQL shared by every replica; the SQLite file `sqliteFile` without it. A secret: never logged. */
    readonly databaseUrl: string | undefined;
    readonly sqliteFile: string;
    /** LEDGER_CONTENT=false: neither prompt nor text is stored. */
    readonly recordContent: boolean;
  };
  readonly upstream: {
    /** From admission to the answer: queueing and retries spend it too. */
    readonly timeoutMs: number;
    /** Retries of a retryable upstream failure per endpoint, by the pipeline (the SDK's own are off). */
    readonly maxRetries: number;
    /** The first retry's longest delay (full jitter); each next one doubles, up to 20 times this. */
    readonly retryBaseMs: number;
    /** The longest upstream Retry-After honoured; a longer one moves on to the next endpoint or fallback. */
    readonly retryAfterMaxMs: number;
    /** One attempt's limit (a stream's: until it starts), so a stalled endpoint leaves time for a fallback; 0: none. */
    readonly attemptTimeoutMs: number;
    /** Consecutive failures that open an endpoint's circuit breaker. */
    readonly breakerFailures: number;
    /** How long an open breaker skips its endpoint before one probe may close it (at most 30 s). */
    readonly breakerHalfOpenMs: number;
    /** Calls in flight per provider; more wait in a queue of at most `maxQueue`, then are refused. */
    readonly concurrency: number;
    readonly maxQueue: number;
  };
  readonly discovery: { readonly intervalMs: number; readonly timeoutMs: number };
  /** In-process llama.cpp models: every `*.gguf` in `modelsDir`. */
  readonly local: {
    readonly modelsDir: string;
    /** CPU threads for inference; llama.cpp's default of 4 on a 2-core machine is hundreds of times slower. */
    readonly threads: number;
    readonly gpu: boolean;
    /** Concurrent requests per model (context sequences); more wait their turn. */
    readonly sequences: number;
    /** Upper bound on each sequence's context, in tokens (the model's own limit also applies). */
    readonly contextSize: number;
    readonly batchSize: number;
    /** Model ids to load in the background at start-up; `*` for all. */
    readonly preload: readonly string[];
    /** Unload a model after this long without requests; 0 keeps models loaded. */
    readonly idleUnloadMs: number;
  };
  readonly auth: {
    /** Keys from API_KEYS, already hashed: the raw values are not kept. */
    readonly inlineKeys: readonly HashedApiKey[];
    /** A JSON file of named keys (and per-key limits). */
    readonly keysFile: string | undefined;
  };
  readonly rateLimits: {
    /** Requests per window per caller: `generate`, `generate_batch`, and each other operation. */
    readonly generate: number;
    readonly generateBatch: number;
    readonly other: number;
    readonly windowMs: number;
    /** Shared counters for several replicas; in memory without it. */
    readonly redisUrl: string | undefined;
  };
  /** Evaluation runs: jobs in this process, or BullMQ on REDIS_URL shared by every replica. */
  readonly evaluations: {
    /** Cells in flight per process, so interactive traffic keeps its speed. */
    readonly concurrency: number;
    /** How long a run's work claimed by a process that stopped (kill -9) waits before another process takes it. */
    readonly leaseMs: number;
    /** How often an `evaluation_progress` subscription reads its run. */
    readonly progressIntervalMs: number;
    /** BullMQ's Redis; cells run in this process only without it. A secret: never logged. */
    readonly redisUrl: string | undefined;
  };
  readonly graphql: {
    readonly introspection: boolean;
    readonly maxDepth: number;
    readonly maxAliases: number;
    readonly maxTokens: number;
    readonly maxCost: number;
    readonly maxDirectives: number;
  };
  readonly shutdownTimeoutMs: number;
  readonly readiness: { readonly minMemoryBytes: number; readonly minDiskBytes: number };
  readonly maxBodyBytes: number;
  /** Streams send a comment line when this long passes without a write, so proxies keep them open. */
  readonly streamHeartbeatMs: number;
  readonly logLevel: z.infer<typeof environmentSchema>['LOG_LEVEL'];
  /** One JSON line per request: to stdout, to a file, or off. */
  readonly accessLog: AccessLogDestination;
  /** How long access-log lines may wait to be written together; 0 writes each line as it comes. */
  readonly accessLogFlushMs: number;
  readonly metrics: {
    /** GET /metrics without a key even when API keys are on (for a scraper inside the network). */
    readonly public: boolean;
  };
  /** OpenTelemetry traces over OTLP/HTTP; off (nothing of the SDK loaded) without an endpoint. */
  readonly tracing: {
    /** The full URL spans are POSTed to (`<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`); undefined: tracing is off. */
    readonly tracesUrl: string | undefined;
    readonly protocol: 'http/protobuf' | 'http/json';
    /** The resource's `service.name`. */
    readonly serviceName: string;
    /** Sent with every export: often a collector's token, so never logged. */
    readonly headers: Readonly<Record<string, string>>;
  };
  readonly version: string;
  /**
   * The keys of catalog endpoints, by the variable their `api_key_env` names: only those variables
   * are read, and LLMOP's own settings cannot be named (they would be sent to the endpoint). Never logged.
   */
  readonly endpointKeys: Readonly<Record<string, string>>;
}

function readVersion(): string {
  const packageJson = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  return packageJson.version;
}

/** Parses the environment once; the rest of the code reads only the returned frozen object. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const env = parsed.data;
  // The rate limiter counts in integer milliseconds per call: limit × window must stay exact in a double.
  for (const variable of ['RATE_LIMIT_GENERATE', 'RATE_LIMIT_GENERATE_BATCH', 'RATE_LIMIT_DEFAULT'] as const) {
    if (env[variable] * env.RATE_LIMIT_WINDOW_MS > Number.MAX_SAFE_INTEGER) {
      throw new ConfigError(`Invalid configuration: ${variable} × RATE_LIMIT_WINDOW_MS must be at most 2^53 - 1`);
    }
  }
  const catalog = loadModelCatalog(
    path.join(projectRoot, 'catalog', 'default-models.json'),
    env.MODEL_CATALOG ? path.resolve(env.MODEL_CATALOG) : undefined,
  );
  const config: AppConfig = {
    port: env.PORT,
    host: env.HOST,
    openai: { apiKey: env.OPENAI_API_KEY, baseURL: env.OPENAI_BASE_URL },
    catalog,
    dataDir: path.resolve(env.DATA_DIR),
    budgetAlerts: { webhookUrl: env.BUDGET_WEBHOOK_URL, retryBaseMs: env.BUDGET_WEBHOOK_RETRY_MS },
    ledger: {
      enabled: env.LEDGER === 'on',
      databaseUrl: env.DATABASE_URL,
      sqliteFile: path.resolve(env.DATA_DIR, 'llmop.db'),
      recordContent: env.LEDGER_CONTENT === 'true',
    },
    upstream: {
      timeoutMs: env.UPSTREAM_TIMEOUT_MS,
      maxRetries: env.UPSTREAM_MAX_RETRIES,
      retryBaseMs: env.UPSTREAM_RETRY_BASE_MS,
      retryAfterMaxMs: env.UPSTREAM_RETRY_AFTER_MAX_MS,
      attemptTimeoutMs: env.UPSTREAM_ATTEMPT_TIMEOUT_MS,
      breakerFailures: env.BREAKER_FAILURES,
      breakerHalfOpenMs: env.BREAKER_HALF_OPEN_MS,
      concurrency: env.PROVIDER_CONCURRENCY,
      maxQueue: env.PROVIDER_QUEUE_LIMIT,
    },
    discovery: { intervalMs: env.DISCOVERY_INTERVAL_MS, timeoutMs: env.DISCOVERY_TIMEOUT_MS },
    local: {
      modelsDir: path.resolve(env.MODELS_DIR),
      threads: env.LOCAL_THREADS,
      gpu: env.LOCAL_GPU === 'true',
      sequences: env.LOCAL_SEQUENCES,
      contextSize: env.LOCAL_CONTEXT_SIZE,
      batchSize: env.LOCAL_BATCH_SIZE,
      preload: env.LOCAL_PRELOAD.split(',')
        .map((id) => id.trim())
        .filter(Boolean),
      idleUnloadMs: env.LOCAL_IDLE_UNLOAD_MS,
    },
    auth: {
      inlineKeys: (env.API_KEYS ?? '')
        .split(',')
        .map((key) => key.trim())
        .filter(Boolean)
        .map((key, index) => ({ name: `key-${index + 1}`, sha256: sha256Hex(key), role: 'admin' as const })),
      keysFile: env.API_KEYS_FILE ? path.resolve(env.API_KEYS_FILE) : undefined,
    },
    rateLimits: {
      generate: env.RATE_LIMIT_GENERATE,
      generateBatch: env.RATE_LIMIT_GENERATE_BATCH,
      other: env.RATE_LIMIT_DEFAULT,
      windowMs: env.RATE_LIMIT_WINDOW_MS,
      redisUrl: env.REDIS_URL,
    },
    evaluations: {
      concurrency: env.EVAL_CONCURRENCY,
      leaseMs: env.EVAL_LEASE_MS,
      progressIntervalMs: env.EVAL_PROGRESS_INTERVAL_MS,
      redisUrl: env.REDIS_URL,
    },
    graphql: {
      introspection: env.INTROSPECTION === 'true',
      maxDepth: env.GRAPHQL_MAX_DEPTH,
      maxAliases: env.GRAPHQL_MAX_ALIASES,
      maxTokens: env.GRAPHQL_MAX_TOKENS,
      maxCost: env.GRAPHQL_MAX_COST,
      maxDirectives: env.GRAPHQL_MAX_DIRECTIVES,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    readiness: {
      minMemoryBytes: env.READY_MIN_MEMORY_MB * 1024 * 1024,
      minDiskBytes: env.READY_MIN_DISK_MB * 1024 * 1024,
    },
    maxBodyBytes: env.MAX_BODY_BYTES,
    streamHeartbeatMs: env.STREAM_HEARTBEAT_MS,
    logLevel: env.LOG_LEVEL,
    accessLog: env.ACCESS_LOG,
    accessLogFlushMs: env.ACCESS_LOG_FLUSH_MS,
    metrics: { public: env.METRICS_PUBLIC === 'true' },
    tracing: {
      tracesUrl: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? tracesUrlOf(env.OTEL_EXPORTER_OTLP_ENDPOINT),
      protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
      serviceName: env.OTEL_SERVICE_NAME ?? 'llmop',
      headers: {
        ...parseOtlpHeaders('OTEL_EXPORTER_OTLP_HEADERS', env.OTEL_EXPORTER_OTLP_HEADERS),
        ...parseOtlpHeaders('OTEL_EXPORTER_OTLP_TRACES_HEADERS', env.OTEL_EXPORTER_OTLP_TRACES_HEADERS),
      },
    },
    version: readVersion(),
    endpointKeys: readEndpointKeys(catalog, environment),
  };
  return deepFreeze(config);
}

/** The signal's path goes after the base endpoint's own path, as the OTLP exporter specification says. */
function tracesUrlOf(endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  return new URL('v1/traces', endpoint.endsWith('/') ? endpoint : `${endpoint}/`).toString();
}

/** `key1=value1,key2=value2`, values percent-encoded (the W3C Baggage format the specification names). */
function parseOtlpHeaders(variable: string, text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    if (pair.trim() === '') continue;
    const separator = pair.indexOf('=');
    const name = separator > 0 ? pair.slice(0, separator).trim() : '';
    let value: string | undefined;
    try {
      value = separator > 0 ? decodeURIComponent(pair.slice(separator + 1).trim()) : undefined;
    } catch {
      value = undefined;
    }
    // The value may be a secret: the message quotes nothing of it.
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || value === undefined) {
      throw new ConfigError(`Invalid configuration: ${variable} must be key=value pairs separated by commas (values percent-encoded)`);
    }
    headers[name.toLowerCase()] = value;
  }
  return headers;
}

function readEndpointKeys(catalog: ModelCatalog, environment: NodeJS.ProcessEnv): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const endpoint of catalog.endpoints) {
    const variable = endpoint.api_key_env;
    if (variable === undefined) continue;
    if (variable in environmentSchema.shape) {
      throw new ConfigError(
        `MODEL_CATALOG: endpoint "${endpoint.name}" names ${variable} as its api_key_env, which is one of LLMOP's own settings`,
      );
    }
    const value = environment[variable]?.trim();
    if (value) keys[variable] = value;
  }
  return keys;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
