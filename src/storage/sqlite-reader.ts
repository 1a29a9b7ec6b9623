import { Worker } from 'node:worker_threads';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';

// Reports (usage, usage series, feedback summaries) scan every row of their range: a month of a
// busy ledger is millions of rows and seconds of SQLite's time. better-sqlite3 runs a query on the
// calling thread, so on the main thread that would stall every request for as long. These run on
// a connection of their own in a worker thread instead; WAL lets it read while the writer commits.
// The worker is made by the first report and stays: one thread, queries queued in order, so a
// burst of dashboard loads costs one core at most.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('query_only = ON');
const statements = new Map();
parentPort.on('message', (message) => {
  if (message === 'stop') {
    db.close();
    parentPort.close();
    return;
  }
  const { id, sql, parameters } = message;
  try {
    let statement = statements.get(sql);
    if (!statement) {
      if (statements.size >= 256) statements.clear();
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    if (!statement.reader) throw Object.assign(new Error('the report reader runs queries that return rows only'), { code: 'LLMOP_NOT_A_READ' });
    parentPort.postMessage({ id, rows: statement.all(...parameters) });
  } catch (error) {
    parentPort.postMessage({ id, error: { message: String((error && error.message) || error), code: error && error.code } });
  }
});
`;

interface Pending {
  readonly resolve: (rows: Record<string, unknown>[]) => void;
  readonly reject: (error: Error) => void;
}

type WorkerAnswer =
  | { readonly id: number; readonly rows: Record<string, unknown>[] }
  | { readonly id: number; readonly error: { readonly message: string; readonly code?: string } };

/** A query the reader's connection refused or failed; `code` is SQLite's, as better-sqlite3 gives it on the main thread. */
export class SqliteReadError extends Error {
  override readonly name = 'SqliteReadError';

  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** Runs read queries on the SQLite file from a worker thread, one after another. */
export class SqliteReader {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stopped = false;

  constructor(private readonly file: string) {}

  all(sql: string, parameters: readonly unknown[]): Promise<Record<string, unknown>[]> {
    if (this.stopped) return Promise.reject(new SqliteReadError('the ledger database is closed', undefined));
    const worker = this.started();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Held only while a query is out: an idle reader never keeps the process alive.
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, sql, parameters });
    });
  }

  /** Answers what is queued, then closes the connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    const worker = this.worker;
    if (!worker) return;
    worker.ref(); // an unref'd worker would let the process exit before it has closed its connection
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    await exited;
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file: this.file, driverPath: require.resolve('better-sqlite3') },
    });
    worker.unref();
    worker.on('message', (answer: WorkerAnswer) => this.answered(worker, answer));
    // A worker that dies (it could not open the file, it ran out of memory) fails what it held; the next query makes a new one.
    worker.on('error', (error) => this.lost(worker, error.message));
    worker.on('exit', (code) => this.lost(worker, `the report reader stopped (exit code ${code})`));
    this.worker = worker;
    return worker;
  }

  private answered(worker: Worker, answer: WorkerAnswer): void {
    const waiting = this.pending.get(answer.id);
    if (!waiting) return;
    this.pending.delete(answer.id);
    if (this.pending.size === 0) worker.unref();
    if ('rows' in answer) waiting.resolve(answer.rows);
    else waiting.reject(new SqliteReadError(answer.error.message, answer.error.code));
  }

  private lost(worker: Worker, message: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const query of waiting) query.reject(new SqliteReadError(message, undefined));
  }
}

/** A Kysely dialect for SQLite whose queries run on `reader`: reads only, no transactions. */
export function sqliteReaderDialect(reader: SqliteReader): Dialect {
  const connection: DatabaseConnection = {
    async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
      return { rows: (await reader.all(compiled.sql, compiled.parameters)) as R[] };
    },
    streamQuery() {
      throw new Error('the report reader does not stream');
    },
  };
  const noTransactions = (): Promise<void> => Promise.reject(new Error('the report reader runs no transactions'));
  const driver: Driver = {
    init: () => Promise.resolve(),
    acquireConnection: () => Promise.resolve(connection),
    beginTransaction: noTransactions,
    commitTransaction: noTransactions,
    rollbackTransaction: noTransactions,
    releaseConnection: () => Promise.resolve(),
    destroy: () => reader.stop(),
  };
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => driver,
    createQueryCompiler: () => new SqliteQueryCompiler(),
    createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
  };
}
