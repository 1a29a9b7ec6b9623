import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type CompiledQuery, Kysely, type LogEvent, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { Pool } from 'pg';
import { ledgerMigrations } from './migrations';
import type { Database } from './schema';
import { startSqliteCheckpointer } from './sqlite-checkpointer';
import { SqliteReader, sqliteReaderDialect } from './sqlite-reader';
import { preparedOnce } from './statement-cache';
import { openSqliteWriter, type SqliteConditionFailure, type SqliteTransactionStatement } from './sqlite-writer';
import { DatabaseSchemaTooNewError } from './storage-errors';

/** Where the ledger lives. */
export interface DatabaseSettings {
  /** `postgres://…`: a PostgreSQL shared by every replica. Unset: the embedded SQLite file. */
  readonly databaseUrl?: string;
  /** The SQLite file (its directory is created); used only without `databaseUrl`. */
  readonly sqliteFile: string;
  /** How long `ping` waits for an answer before saying the database is unreachable. */
  readonly pingTimeoutMs?: number;
  /** How often SQLite's WAL is checkpointed (from a worker thread). */
  readonly checkpointIntervalMs?: number;
  /** Told the SQL text (never the parameters) and duration of every query Kysely runs: LOG_LEVEL=trace. */
  readonly onQuery?: (sql: string, durationMs: number) => void;
  /** Reports background failures (a checkpoint); a process warning by default. */
  readonly onBackgroundError?: (message: string) => void;
}

export type DatabaseKind = 'sqlite' | 'postgres';

/** A statement of a transaction with a condition on what it changed. */
export interface GuardedStatement {
  readonly query: CompiledQuery;
  /**
   * The statement must change exactly this many rows (for one with RETURNING: return this many),
   * or the whole transaction is rolled back and rejects with TransactionConditionError.
   */
  readonly expectChanges?: number;
  /**
   * Run inside the transaction, just before that rollback: its rows, on the error, explain the
   * failure (what a conditional update found instead).
   */
  readonly explain?: CompiledQuery;
  /** Given back on the error: which statement it was, in the caller's terms. */
  readonly label?: string;
}

export type TransactionStatement = CompiledQuery | GuardedStatement;

/** What one statement of a committed transaction did. */
export interface StatementResult {
  /** Rows inserted, updated or deleted (0 for a SELECT). */
  readonly changes: number;
  /** What the statement returned: a SELECT's rows or those of RETURNING; empty otherwise. */
  readonly rows: readonly Record<string, unknown>[];
}

/** A transaction was rolled back because one of its statements missed its `expectChanges`. */
export class TransactionConditionError extends Error {
  override readonly name = 'TransactionConditionError';

  constructor(
    /** The statement's position in the transaction. */
    readonly statementIndex: number,
    readonly label: string | undefined,
    /** What it changed instead. */
    readonly changes: number,
    /** The rows of its `explain` query (empty without one). */
    readonly explanation: readonly Record<string, unknown>[],
  ) {
    super(
      `statement ${statementIndex}${label === undefined ? '' : ` (${label})`} of a transaction changed ${changes} rows, ` +
        'not the number expected: the transaction was rolled back',
    );
  }
}

/** An open, migrated ledger database. */
export interface LedgerDatabase {
  readonly kind: DatabaseKind;
  /** For reads (and for building writes: compile them and hand them to `write`). */
  readonly db: Kysely<Database>;
  /**
   * For reports that scan a range of rows (usage, series, summaries): reads only. On SQLite its
   * queries run on a connection in a worker thread, so a long scan never holds the event loop; on
   * PostgreSQL it is `db`.
   */
  readonly reports: Kysely<Database>;
  /**
   * Runs one write statement in its own transaction and resolves with the rows it changed once it
   * is committed. On SQLite it runs on the writing connection, after the writes made before it.
   */
  write(query: CompiledQuery): Promise<number>;
  /**
   * Runs the statements in one transaction: all are committed together, or none is. Resolves, once
   * committed, with each statement's changes and returned rows, in order. A statement that throws
   * rolls everything back and rejects with its error; one that misses its `expectChanges` rolls
   * everything back and rejects with TransactionConditionError. On SQLite it runs on the writing
   * connection (BEGIN IMMEDIATE), after the writes made before it; on PostgreSQL on one connection,
   * BEGIN … COMMIT at READ COMMITTED (a conditional UPDATE re-checks its condition on the row
   * version it locks, so concurrent ones never both pass).
   */
  transaction(statements: readonly TransactionStatement[]): Promise<StatementResult[]>;
  /**
   * Runs each list of statements as `transaction` would, alone: one that fails fails alone. On
   * SQLite they share one commit (a savepoint each), which is how a group commit batches them; on
   * PostgreSQL each is its own transaction, run concurrently. One settled result per list, in order.
   */
  transactions(transactions: readonly (readonly TransactionStatement[])[]): Promise<PromiseSettledResult<StatementResult[]>[]>;
  /**
   * Runs one write statement on the reading connection and resolves with the rows it changed: for
   * start-up only, before any request is served.
   */
  writeAtStartup(query: CompiledQuery): Promise<number>;
  /**
   * SQLite only (undefined on PostgreSQL): runs a read at once on the writing connection (whose
   * page cache every commit leaves warm) and returns its rows, seeing every write committed so far.
   * For short reads by key only: it holds the event loop while it runs.
   */
  readonly readNow?: (query: CompiledQuery) => Record<string, unknown>[];
  /** True when the database answers a query within the ping timeout (and, on SQLite, the writer is open); never throws. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

const MIGRATION_TABLE = 'llmop_migration';
const MIGRATION_LOCK_TABLE = 'llmop_migration_lock';
const DEFAULT_PING_TIMEOUT_MS = 2000;
const DEFAULT_CHECKPOINT_INTERVAL_MS = 500;

/**
 * Opens the ledger database and brings its schema up to date. Only the driver in use is loaded
 * (`pg` or `better-sqlite3`). Refuses, with DatabaseSchemaTooNewError, a database that a newer
 * LLMOP has migrated.
 */
export function openDatabase(settings: DatabaseSettings): Promise<LedgerDatabase> {
  const databaseUrl = settings.databaseUrl?.trim();
  return databaseUrl ? openPostgres(databaseUrl, settings) : openSqlite(settings);
}

async function openSqlite(settings: DatabaseSettings): Promise<LedgerDatabase> {
  const BetterSqlite3 = require('better-sqlite3') as typeof import('better-sqlite3');
  const file = path.resolve(settings.sqliteFile);
  mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new BetterSqlite3(file);
  // WAL with synchronous=NORMAL: a commit is in the OS's hands when it returns, so it survives a
  // killed process (not a power cut), and commits do not wait for fsync. Readers never block the writer.
  const journalMode: unknown = sqlite.pragma('journal_mode = WAL', { simple: true });
  if (journalMode !== 'wal') {
    sqlite.close();
    throw new Error(`SQLite refused WAL mode for ${file} (journal_mode is ${String(journalMode)})`);
  }
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  // Checkpoints (which fsync) run in their own thread, never inside a commit or a read: the
  // commits themselves (sqlite-writer.ts) are a write() into the WAL each.
  sqlite.pragma('wal_autocheckpoint = 0');
  // Kysely's driver would prepare every query it runs; nothing streams through Kysely here.
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: { close: () => sqlite.close(), prepare: preparedOnce(sqlite) } }),
    log: queryLog(settings),
  });
  await migrateOrDestroy(db);

  const onError = settings.onBackgroundError ?? ((message: string) => process.emitWarning(`ledger: ${message}`));
  const writer = openSqliteWriter(file);
  // Started by the first write: until then there is nothing to checkpoint, and an idle server
  // (or one still starting) does not pay for a second thread.
  let checkpointer: ReturnType<typeof startSqliteCheckpointer> | undefined;
  const startCheckpointer = (): void => {
    checkpointer ??= startSqliteCheckpointer(file, settings.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS, onError);
  };
  const reports = new Kysely<Database>({ dialect: sqliteReaderDialect(new SqliteReader(file)), log: queryLog(settings) });
  const pingTimeoutMs = settings.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  return {
    kind: 'sqlite',
    db,
    reports,
    write: (query) => {
      startCheckpointer();
      return writer.execute(query.sql, query.parameters);
    },
    async transaction(statements) {
      startCheckpointer();
      const outcome = await writer.transaction(statements.map(toSqliteStatement));
      if (!outcome.committed) throw conditionError(outcome.failure);
      return [...outcome.results];
    },
    async transactions(transactions) {
      startCheckpointer();
      const outcomes = await writer.transactions(transactions.map((statements) => statements.map(toSqliteStatement)));
      return outcomes.map((outcome): PromiseSettledResult<StatementResult[]> => {
        if (outcome.committed) return { status: 'fulfilled', value: [...outcome.results] };
        return { status: 'rejected', reason: 'error' in outcome ? outcome.error : conditionError(outcome.failure) };
      });
    },
    writeAtStartup: async (query) => Number((await db.executeQuery(query)).numAffectedRows ?? 0n),
    readNow: (query) => writer.read(query.sql, query.parameters),
    ping: async () => writer.alive && answers(db, pingTimeoutMs),
    async close() {
      await reports.destroy();
      await writer.stop();
      await checkpointer?.stop();
      await db.destroy(); // the last connection to close checkpoints what is left
    },
  };
}

async function openPostgres(connectionString: string, settings: DatabaseSettings): Promise<LedgerDatabase> {
  const pg = require('pg') as typeof import('pg');
  const int8 = pg.types.builtins.INT8;
  const pool: Pool = new pg.Pool({
    connectionString,
    max: 10,
    connectionTimeoutMillis: 5000,
    // BIGINT columns (times, cost units) and counts come back as numbers; one that a number
    // cannot hold exactly is an error, not a silently rounded value.
    types: { getTypeParser: (oid, format) => (oid === int8 ? parseExactInteger : pg.types.getTypeParser(oid, format)) },
  });
  // An idle client's error (the server restarted) must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: queryLog(settings) });
  await migrateOrDestroy(db);
  const pingTimeoutMs = settings.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  const transaction = async (statements: readonly TransactionStatement[]): Promise<StatementResult[]> => {
    const only = statements.length === 1 ? asGuarded(statements[0]!) : undefined;
    // One statement with no condition is atomic by itself: no BEGIN and COMMIT round trips.
    if (only && only.expectChanges === undefined) {
      const result = await db.executeQuery<Record<string, unknown>>(only.query);
      return [{ changes: Number(result.numAffectedRows ?? 0n), rows: result.rows }];
    }
    return db.transaction().execute(async (trx) => {
      const results: StatementResult[] = [];
      for (const [index, statement] of statements.entries()) {
        const guarded = asGuarded(statement);
        const result = await trx.executeQuery<Record<string, unknown>>(guarded.query);
        const changes = Number(result.numAffectedRows ?? 0n);
        if (guarded.expectChanges !== undefined && changes !== guarded.expectChanges) {
          const explanation = guarded.explain ? (await trx.executeQuery<Record<string, unknown>>(guarded.explain)).rows : [];
          throw new TransactionConditionError(index, guarded.label, changes, explanation); // Kysely rolls back
        }
        results.push({ changes, rows: result.rows });
      }
      return results;
    });
  };
  return {
    kind: 'postgres',
    db,
    reports: db,
    write: async (query) => Number((await db.executeQuery(query)).numAffectedRows ?? 0n),
    transaction,
    transactions: (transactions) => Promise.allSettled(transactions.map(transaction)),
    writeAtStartup: async (query) => Number((await db.executeQuery(query)).numAffectedRows ?? 0n),
    ping: () => answers(db, pingTimeoutMs),
    close: () => db.destroy(),
  };
}

/** Kysely's query log, only when asked for: without it Kysely does not time queries at all. */
function queryLog({ onQuery }: DatabaseSettings): ((event: LogEvent) => void) | undefined {
  if (!onQuery) return undefined;
  return (event) => {
    if (event.level === 'query') onQuery(event.query.sql, event.queryDurationMillis);
  };
}

/** The writer's report of a missed `expectChanges`, as the error `transaction` rejects with. */
function conditionError({ index, label, changes, rows }: SqliteConditionFailure): TransactionConditionError {
  return new TransactionConditionError(index, label, changes, rows);
}

/** A CompiledQuery has `sql`; a GuardedStatement wraps one in `query`. */
function asGuarded(statement: TransactionStatement): GuardedStatement {
  return 'sql' in statement ? { query: statement } : statement;
}

function toSqliteStatement(statement: TransactionStatement): SqliteTransactionStatement {
  const { query, expectChanges, explain, label } = asGuarded(statement);
  return {
    sql: query.sql,
    parameters: query.parameters,
    expectChanges,
    explain: explain && { sql: explain.sql, parameters: explain.parameters },
    label,
  };
}

function parseExactInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`the integer ${text} cannot be read exactly as a number`);
  return value;
}

async function answers(db: Kysely<Database>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const answered = sql`select 1`.execute(db).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([answered, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

async function migrateOrDestroy(db: Kysely<Database>): Promise<void> {
  try {
    await migrate(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

async function migrate(db: Kysely<Database>): Promise<void> {
  await refuseNewerSchema(db);
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => ledgerMigrations },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error } = await migrator.migrateToLatest();
  if (error !== undefined) {
    // Another replica may have applied a newer migration since the check above.
    await refuseNewerSchema(db);
    throw error;
  }
}

async function refuseNewerSchema(db: Kysely<Database>): Promise<void> {
  const tables = await db.introspection.getTables();
  if (!tables.some((table) => table.name === MIGRATION_TABLE)) return;
  const applied = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(db);
  const unknown = applied.rows.map((row) => row.name).filter((name) => !Object.hasOwn(ledgerMigrations, name));
  if (unknown.length > 0) throw new DatabaseSchemaTooNewError(unknown);
}
