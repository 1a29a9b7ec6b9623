import 'reflect-metadata';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';

export interface GatewayOptions {
  /** Extra environment, merged over a quiet test default (PORT=0, LOG_LEVEL=silent). */
  env?: Record<string, string | undefined>;
  /** A user catalog, written to a temporary file and passed as MODEL_CATALOG. */
  catalog?: unknown;
}

export interface GraphQLResult<TData = any> {
  status: number;
  headers: Headers;
  // `any` in the default: tests read deep fields of varied responses without declaring each shape.
  body: { data?: TData | null; errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }> };
}

export interface RunningGateway {
  readonly app: App;
  readonly url: string;
  graphql<TData = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResult<TData>>;
  close(): Promise<void>;
}

export function writeTempCatalog(catalog: unknown): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-catalog-'));
  const file = path.join(directory, 'catalog.json');
  writeFileSync(file, JSON.stringify(catalog));
  return file;
}

/** Starts the real gateway on an ephemeral port on 127.0.0.1. */
export async function startGateway(options: GatewayOptions = {}): Promise<RunningGateway> {
  const env: Record<string, string | undefined> = {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    UPSTREAM_MAX_RETRIES: '0',
    // An empty models directory, so the repository's own ./models never leaks into a test.
    MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')),
    ...(options.catalog === undefined ? {} : { MODEL_CATALOG: writeTempCatalog(options.catalog) }),
    ...options.env,
  };
  const config = loadConfig(env);
  const app = await createApp(config, createLogger(config.logLevel));
  const address = await app.listen();
  const url = `http://127.0.0.1:${address.port}`;
  return {
    app,
    url,
    async graphql(query, variables, headers) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResult['body'] };
    },
    close: () => app.close(),
  };
}
