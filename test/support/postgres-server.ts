/**
 * A PostgreSQL for tests of the ledger.
 *
 * - With `TEST_DATABASE_URL` set (CI's service container), that server is used.
 * - Otherwise a throw-away cluster is made with Debian's `initdb` in a temporary directory and
 *   started with `pg_ctl` on a free port on 127.0.0.1 (as the `postgres` user when we are root:
 *   `initdb` refuses to run as root); `stop()` stops it and removes the directory.
 *
 * Each `createDatabase()` makes a fresh, empty database on it, dropped again by `stop()`.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from './polling';

export interface TestPostgres {
  /** A fresh database's URL, for DATABASE_URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

const POSTGRES_BIN = process.env.TEST_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';
const START_TIMEOUT_S = 20;

const run = promisify(execFile);

/** Runs a PostgreSQL program, as `postgres` when we are root. */
function runAsOwner(program: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  const binary = path.join(POSTGRES_BIN, program);
  const asRoot = process.getuid?.() === 0;
  return asRoot ? run('runuser', ['-u', 'postgres', '--', binary, ...args]) : run(binary, [...args]);
}

async function withClient<T>(url: string, use: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

function databaseUrl(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates databases on a server reachable at `adminUrl`; `dropAll` drops them again. */
function databaseMaker(adminUrl: string): { createDatabase(): Promise<string>; dropAll(): Promise<void> } {
  const created: string[] = [];
  return {
    async createDatabase() {
      const name = `llmop_test_${process.pid}_${created.length}_${Math.random().toString(36).slice(2, 8)}`;
      await withClient(adminUrl, (client) => client.query(`create database ${name}`));
      created.push(name);
      return databaseUrl(adminUrl, name);
    },
    async dropAll() {
      if (created.length === 0) return;
      await withClient(adminUrl, async (client) => {
        for (const name of created.splice(0)) await client.query(`drop database if exists ${name} with (force)`);
      });
    },
  };
}

async function startCluster(): Promise<TestPostgres> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-pg-'));
  const dataDirectory = path.join(directory, 'data');
  const removeDirectory = () => rmSync(directory, { recursive: true, force: true });
  try {
    if (process.getuid?.() === 0) {
      const postgres = await run('id', ['-u', 'postgres']);
      const group = await run('id', ['-g', 'postgres']);
      chownSync(directory, Number(postgres.stdout.trim()), Number(group.stdout.trim()));
    }
    await runAsOwner('initdb', ['-D', dataDirectory, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync']);
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      // Unix socket in our directory (not /var/run/postgresql); fsync off: a test cluster need not survive a power cut.
      const serverOptions = `-p ${port} -k ${directory} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
      try {
        await runAsOwner('pg_ctl', [
          'start',
          '-D',
          dataDirectory,
          '-w',
          '-t',
          String(START_TIMEOUT_S),
          '-l',
          path.join(directory, 'server.log'),
          '-o',
          serverOptions,
        ]);
      } catch (error) {
        if (attempt < 3) continue; // e.g. the port was taken meanwhile: try another
        throw error;
      }
      const maker = databaseMaker(`postgres://postgres@127.0.0.1:${port}/postgres`);
      return {
        createDatabase: maker.createDatabase,
        async stop() {
          try {
            await runAsOwner('pg_ctl', ['stop', '-D', dataDirectory, '-m', 'immediate', '-w']);
          } finally {
            removeDirectory();
          }
        },
      };
    }
  } catch (error) {
    removeDirectory();
    throw error;
  }
}

/** A running PostgreSQL: TEST_DATABASE_URL's server, or a fresh cluster of our own. */
export async function startPostgres(): Promise<TestPostgres> {
  const external = process.env.TEST_DATABASE_URL?.trim();
  if (!external) return startCluster();
  const maker = databaseMaker(external);
  return { createDatabase: maker.createDatabase, stop: maker.dropAll };
}
