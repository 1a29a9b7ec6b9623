import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DatabaseSettings } from '../../src/storage/database';
import { startPostgres, type TestPostgres } from '../support/postgres-server';

/** One of the ledger's two stores, as the shared suites see it: fresh, empty databases on demand. */
export interface LedgerStore {
  readonly name: string;
  setUp(): Promise<void>;
  /** Settings for a new, empty database. */
  freshDatabase(): Promise<DatabaseSettings>;
  tearDown(): Promise<void>;
}

export function sqliteStore(): LedgerStore {
  let directory = '';
  let files = 0;
  return {
    name: 'SQLite',
    async setUp() {
      directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-ledger-'));
    },
    async freshDatabase() {
      files += 1;
      return { sqliteFile: path.join(directory, `ledger-${files}.db`) };
    },
    async tearDown() {
      if (directory) rmSync(directory, { recursive: true, force: true });
    },
  };
}

export function postgresStore(): LedgerStore {
  let server: TestPostgres | undefined;
  return {
    name: 'PostgreSQL',
    async setUp() {
      server = await startPostgres();
    },
    async freshDatabase() {
      if (!server) throw new Error('setUp() first');
      // Ignored with a databaseUrl.
      return { databaseUrl: await server.createDatabase(), sqliteFile: '/nonexistent/unused.db' };
    },
    async tearDown() {
      await server?.stop();
    },
  };
}
