import type { DatabaseConnection, Dialect, Driver, Kysely, TransactionSettings } from 'kysely';

/** Awaited before every query: commits what was accepted but is not yet in the database. */
export type QueryBarrier = () => Promise<void>;

/**
 * A dialect whose every query first awaits `barrier()`. The SQLite ledger commits journaled rows in
 * batches a few milliseconds after accepting them (src/storage/row-journal.ts); reads through this
 * dialect see them anyway, as if each had been committed when it was accepted.
 */
export function withQueryBarrier(dialect: Dialect, barrier: QueryBarrier): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db: Kysely<unknown>) => dialect.createIntrospector(db),
    createDriver: () => new BarrierDriver(dialect.createDriver(), barrier),
  };
}

class BarrierDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly barrier: QueryBarrier,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.barrier();
    return this.inner.acquireConnection();
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(connection);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(connection);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}
