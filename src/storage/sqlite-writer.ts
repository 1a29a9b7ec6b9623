import { Worker } from 'node:worker_threads';

// The writer thread owns the ledger's only writing connection. better-sqlite3 is synchronous:
// on the main thread every commit (a WAL append, index pages read from disk) would stall all
// requests for as long as the disk takes. Here the main thread only posts the compiled statement.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 5000');
db.pragma('wal_autocheckpoint = 0');
// When the WAL starts over after a checkpoint, a file grown past this under a burst is trimmed back.
db.pragma('journal_size_limit = 67108864');
const statements = new Map();
const prepare = (sql) => {
  let statement = statements.get(sql);
  if (!statement) {
    if (statements.size >= 256) statements.clear();
    statement = db.prepare(sql);
    statements.set(sql, statement);
  }
  return statement;
};
// One statement of a transaction: its changes, and the rows it returns (a SELECT, or RETURNING).
const runStatement = (sql, parameters) => {
  const statement = prepare(sql);
  if (!statement.reader) return { changes: statement.run(parameters).changes, rows: [] };
  const rows = statement.all(parameters);
  // With RETURNING, a row for every row changed; a SELECT changes nothing.
  return { changes: statement.readonly ? 0 : rows.length, rows };
};
class ConditionFailed {
  constructor(index, label, changes, rows) {
    Object.assign(this, { index, label, changes, rows });
  }
}
// BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when a statement throws or misses its expected changes.
const runTransaction = db.transaction((list) =>
  list.map((item, index) => {
    const result = runStatement(item.sql, item.parameters);
    if (item.expectChanges !== undefined && result.changes !== item.expectChanges) {
      const explained = item.explain ? runStatement(item.explain.sql, item.explain.parameters).rows : [];
      throw new ConditionFailed(index, item.label, result.changes, explained);
    }
    return result;
  }),
);
parentPort.on('message', (message) => {
  if (message.stop) {
    db.close();
    parentPort.close();
    return;
  }
  try {
    if (message.transaction) {
      parentPort.postMessage({ id: message.id, results: runTransaction.immediate(message.transaction) });
      return;
    }
    const { changes } = prepare(message.sql).run(message.parameters);
    parentPort.postMessage({ id: message.id, changes });
  } catch (error) {
    if (error instanceof ConditionFailed) {
      parentPort.postMessage({ id: message.id, conditionFailed: { ...error } });
      return;
    }
    parentPort.postMessage({ id: message.id, error: { message: String((error && error.message) || error), code: error && error.code } });
  }
});
`;

interface WriteReply {
  readonly id: number;
  readonly changes?: number;
  readonly results?: readonly SqliteStatementResult[];
  readonly conditionFailed?: SqliteConditionFailure;
  readonly error?: { readonly message: string; readonly code?: string };
}

/** One statement of a transaction, as the writer thread runs it. */
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

/** A write statement failed in the writer thread; `code` is SQLite's (SQLITE_CONSTRAINT_…). */
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
   * Runs the statements in one transaction (BEGIN IMMEDIATE): committed together, or rolled back
   * together when one throws (the promise rejects with SqliteWriteError) or misses its `expectChanges`
   * (the promise resolves with `committed: false`).
   */
  transaction(statements: readonly SqliteTransactionStatement[]): Promise<SqliteTransactionOutcome>;
  /** False once the thread has stopped or died: nothing can be recorded. */
  readonly alive: boolean;
  stop(): Promise<void>;
}

/** Starts the writer thread for the SQLite file (already created, in WAL mode, migrated). */
export function startSqliteWriter(file: string, onError: (message: string) => void): SqliteWriter {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driverPath: require.resolve('better-sqlite3') } });
  worker.unref(); // referenced only while a write is pending (below)
  const pending = new Map<number, { resolve: (reply: WriteReply) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let alive = true;
  let stopping = false;

  const settle = (reply: WriteReply): void => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if (reply.error) waiter.reject(new SqliteWriteError(reply.error.message, reply.error.code));
    else waiter.resolve(reply);
  };
  const failAll = (error: Error): void => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  worker.on('message', settle);
  worker.on('error', (error) => {
    alive = false;
    onError(`the ledger's writer thread failed: ${error.message}`);
    failAll(error);
  });
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      alive = false;
      if (!stopping) onError("the ledger's writer thread exited");
      failAll(new Error("the ledger's writer thread has stopped"));
      resolve();
    }),
  );

  const post = (message: object): Promise<WriteReply> => {
    if (!alive || stopping) return Promise.reject(new Error("the ledger's writer thread has stopped"));
    const id = nextId++;
    return new Promise<WriteReply>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      if (pending.size === 1) worker.ref(); // an awaited commit keeps the process alive
      worker.postMessage({ ...message, id });
    });
  };

  return {
    get alive() {
      return alive;
    },
    async execute(sql, parameters) {
      return (await post({ sql, parameters })).changes ?? 0;
    },
    async transaction(statements) {
      const reply = await post({ transaction: statements });
      return reply.conditionFailed
        ? { committed: false, failure: reply.conditionFailed }
        : { committed: true, results: reply.results ?? [] };
    },
    async stop() {
      if (!alive) return exited;
      stopping = true;
      worker.ref();
      worker.postMessage({ stop: true }); // after every statement already posted
      await exited;
    },
  };
}
