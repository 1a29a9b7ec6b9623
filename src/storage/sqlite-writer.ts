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
parentPort.on('message', (message) => {
  if (message.stop) {
    db.close();
    parentPort.close();
    return;
  }
  try {
    let statement = statements.get(message.sql);
    if (!statement) {
      if (statements.size >= 256) statements.clear();
      statement = db.prepare(message.sql);
      statements.set(message.sql, statement);
    }
    const { changes } = statement.run(message.parameters);
    parentPort.postMessage({ id: message.id, changes });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: { message: String((error && error.message) || error), code: error && error.code } });
  }
});
`;

interface WriteReply {
  readonly id: number;
  readonly changes?: number;
  readonly error?: { readonly message: string; readonly code?: string };
}

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
  /** False once the thread has stopped or died: nothing can be recorded. */
  readonly alive: boolean;
  stop(): Promise<void>;
}

/** Starts the writer thread for the SQLite file (already created, in WAL mode, migrated). */
export function startSqliteWriter(file: string, onError: (message: string) => void): SqliteWriter {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driverPath: require.resolve('better-sqlite3') } });
  worker.unref(); // referenced only while a write is pending (below)
  const pending = new Map<number, { resolve: (changes: number) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let alive = true;
  let stopping = false;

  const settle = (reply: WriteReply): void => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if (reply.error) waiter.reject(new SqliteWriteError(reply.error.message, reply.error.code));
    else waiter.resolve(reply.changes ?? 0);
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

  return {
    get alive() {
      return alive;
    },
    execute(sql, parameters) {
      if (!alive || stopping) return Promise.reject(new Error("the ledger's writer thread has stopped"));
      const id = nextId++;
      return new Promise<number>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (pending.size === 1) worker.ref(); // an awaited commit keeps the process alive
        worker.postMessage({ id, sql, parameters });
      });
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
