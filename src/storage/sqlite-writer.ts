import type BetterSqlite3 from 'better-sqlite3';
import { preparedOnce } from './statement-cache';

// The ledger's only writing connection, on the main thread. In WAL mode with synchronous=NORMAL a
// commit is a write() of its pages into the WAL (no fsync: that is the checkpoint thread's work),
// tens of microseconds; handing it to a worker thread cost more than that twice over (two thread
// hand-offs per commit, and on a loaded core the two threads take turns). The group commit
// bounds how much one commit writes, so the event loop is held for a bounded step.
//
// busy_timeout is 0: SQLite's busy handler sleeps, and on this thread that would stall every
// request. The write lock is busy only while a RESTART checkpoint ends (or another process
// writes); a write that finds it busy waits in a queue, retried from a timer, and every write after
// it waits behind it, so writes still commit in the order they were made.

/** One statement of a transaction. */
export interface SqliteTransactionStatement {
  readonly sql: string;
  readonly parameters: readonly unknown[];
  /** The transaction rolls back unless the statement changes (or, with RETURNING, returns) exactly this many rows. */
  readonly expectChanges?: number;
  /** Run before that rollback; its rows explain the failure. */
  readonly explain?: { readonly sql: string; readonly parameters: readonly unknown[] };
  readonly label?: string;
}

export interface SqliteStatementResult {
  readonly changes: number;
  readonly rows: readonly Record<string, unknown>[];
}

/** Which statement missed its expected changes (the transaction was rolled back). */
export interface SqliteConditionFailure {
  readonly index: number;
  readonly label: string | undefined;
  readonly changes: number;
  readonly rows: readonly Record<string, unknown>[];
}

/** What a transaction came to: committed with every statement's result, or rolled back on a failed condition. */
export type SqliteTransactionOutcome =
  | { readonly committed: true; readonly results: readonly SqliteStatementResult[] }
  | { readonly committed: false; readonly failure: SqliteConditionFailure };

/** One transaction of a group committed together (`SqliteWriter.transactions`): as alone, or failed by a statement's error. */
export type SqliteGroupedOutcome = SqliteTransactionOutcome | { readonly committed: false; readonly error: Error };

/** A write statement failed; `code` is SQLite's (SQLITE_CONSTRAINT_…, SQLITE_BUSY when the lock never came free). */
export class SqliteWriteError extends Error {
  override readonly name = 'SqliteWriteError';

  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface SqliteWriter {
  /** Runs one statement (atomic: its own transaction); resolves with the rows it changed once committed. */
  execute(sql: string, parameters: readonly unknown[]): Promise<number>;
  /**
   * Runs the statements in one transaction (BEGIN IMMEDIATE), after every write made before it:
   * committed together, or rolled back together when one throws (the promise rejects with
   * SqliteWriteError) or misses its `expectChanges` (the promise resolves with `committed: false`).
   */
  transaction(statements: readonly SqliteTransactionStatement[]): Promise<SqliteTransactionOutcome>;
  /**
   * Runs several transactions in one commit (group commit): each is a savepoint, rolled back alone
   * when one of its statements throws or misses its `expectChanges`; the rest commit together.
   * One outcome per transaction, in order. Rejects (nothing committed) only when the commit as a
   * whole fails.
   */
  transactions(transactions: readonly (readonly SqliteTransactionStatement[])[]): Promise<SqliteGroupedOutcome[]>;
  /**
   * Runs a read at once on this connection and returns its rows: it sees every committed write.
   * Writes never hold a transaction open across turns of the event loop, so a read runs between
   * them. Cheaper here than on another connection for a read by key: after each commit, another
   * connection reads again every page it needs, this one has them cached. Throws once stopped.
   */
  read(sql: string, parameters: readonly unknown[]): Record<string, unknown>[];
  /** False once stopped: nothing can be recorded. */
  readonly alive: boolean;
  /** Waits for the queued writes, then closes the connection. */
  stop(): Promise<void>;
}

export interface SqliteWriterSettings {
  /** How long a write waits for a busy write lock before it fails with SQLITE_BUSY. */
  readonly busyTimeoutMs?: number;
  /** How often a write that found the lock busy tries again. */
  readonly busyRetryMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const DEFAULT_BUSY_RETRY_MS = 1;
// When the WAL starts over after a checkpoint, a file grown past this under a burst is trimmed back.
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;

class ConditionFailed {
  constructor(readonly failure: SqliteConditionFailure) {}
}

interface QueuedWrite {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly giveUpAt: number;
}

/** Opens the writing connection to the SQLite file (already created, in WAL mode, migrated). */
export function openSqliteWriter(file: string, settings: SqliteWriterSettings = {}): SqliteWriter {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 0');
  db.pragma('wal_autocheckpoint = 0');
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
  const busyTimeoutMs = settings.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const busyRetryMs = settings.busyRetryMs ?? DEFAULT_BUSY_RETRY_MS;

  const prepare = preparedOnce(db);
  // One statement of a transaction: its changes, and the rows it returns (a SELECT, or RETURNING).
  const runStatement = (sql: string, parameters: readonly unknown[]): SqliteStatementResult => {
    const statement = prepare(sql);
    if (!statement.reader) return { changes: statement.run(...parameters).changes, rows: [] };
    const rows = statement.all(...parameters) as Record<string, unknown>[];
    // With RETURNING, a row for every row changed; a SELECT changes nothing.
    return { changes: statement.readonly ? 0 : rows.length, rows };
  };
  const runTransaction = db.transaction((list: readonly SqliteTransactionStatement[]) =>
    list.map((item, index) => {
      const result = runStatement(item.sql, item.parameters);
      if (item.expectChanges !== undefined && result.changes !== item.expectChanges) {
        const rows = item.explain ? runStatement(item.explain.sql, item.explain.parameters).rows : [];
        throw new ConditionFailed({ index, label: item.label, changes: result.changes, rows });
      }
      return result;
    }),
  );

  // Nested in another transaction function, better-sqlite3 runs runTransaction as a savepoint and
  // rolls back to it when it throws.
  const runGrouped = db.transaction((transactions: readonly (readonly SqliteTransactionStatement[])[]) =>
    transactions.map((list): SqliteGroupedOutcome => {
      try {
        return { committed: true, results: runTransaction(list) };
      } catch (error) {
        if (error instanceof ConditionFailed) return { committed: false, failure: error.failure };
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction: nothing of the group stands.
        if (!db.inTransaction) throw error;
        return { committed: false, error: asWriteError(error) };
      }
    }),
  );

  const queue: QueuedWrite[] = [];
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  const drainWaiters: (() => void)[] = [];

  const isBusy = (error: unknown): boolean => {
    const code = (error as { code?: unknown } | null)?.code;
    return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED';
  };
  const asWriteError = (error: unknown): Error => {
    if (error instanceof Error && !('code' in error)) return error;
    const { message, code } = error as { message?: unknown; code?: unknown };
    return new SqliteWriteError(String(message ?? error), typeof code === 'string' ? code : undefined);
  };

  // Runs the queued writes in order until one finds the lock busy; that one is retried from a timer.
  const drain = (): void => {
    retryTimer = undefined;
    while (queue.length > 0) {
      const write = queue[0]!;
      let value: unknown;
      try {
        value = write.run();
      } catch (error) {
        if (isBusy(error) && Date.now() < write.giveUpAt) {
          retryTimer = setTimeout(drain, busyRetryMs);
          return;
        }
        queue.shift();
        write.reject(asWriteError(error));
        continue;
      }
      queue.shift();
      write.resolve(value);
    }
    for (const resolve of drainWaiters.splice(0)) resolve();
  };

  const submit = <T>(run: () => T): Promise<T> => {
    if (stopped) return Promise.reject(new Error("the ledger's writer has stopped"));
    return new Promise<T>((resolve, reject) => {
      queue.push({ run, resolve: resolve as (value: unknown) => void, reject, giveUpAt: Date.now() + busyTimeoutMs });
      // Behind a write waiting for the lock: its timer runs this one too, in order.
      if (queue.length === 1) drain();
    });
  };

  return {
    get alive() {
      return !stopped;
    },
    execute: (sql, parameters) => submit(() => prepare(sql).run(...parameters).changes),
    transaction: (list) =>
      submit((): SqliteTransactionOutcome => {
        try {
          return { committed: true, results: runTransaction.immediate(list) };
        } catch (error) {
          if (error instanceof ConditionFailed) return { committed: false, failure: error.failure };
          throw error;
        }
      }),
    transactions: (transactions) => submit(() => runGrouped.immediate(transactions)),
    read(sql, parameters) {
      if (stopped) throw new Error("the ledger's writer has stopped");
      return prepare(sql).all(...parameters) as Record<string, unknown>[];
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (queue.length > 0) await new Promise<void>((resolve) => drainWaiters.push(resolve));
      if (retryTimer) clearTimeout(retryTimer);
      db.close();
    },
  };
}
