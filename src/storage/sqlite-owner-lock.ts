import type BetterSqlite3 from 'better-sqlite3';

/**
 * The embedded ledger belongs to one process: its start-up cancels every row left in progress, and
 * its budgets are looked up from a copy in memory that only its own changes discard. A second
 * process on the same file would cancel the first one's generations and miss its budgets, so it
 * is refused at start. The lock is SQLite's own: an exclusive transaction, held for the process's
 * life, on a sibling file (`<ledger>.owner`). The operating system drops it when the process dies,
 * kill -9 included, so a restart never finds a stale lock.
 */
export class LedgerInUseError extends Error {
  override readonly name = 'LedgerInUseError';

  constructor(readonly file: string) {
    super(
      `The SQLite ledger ${file} is in use by another process: one process owns an embedded ledger. ` +
        'Stop the other process, give this one its own DATA_DIR, or share a PostgreSQL (DATABASE_URL) between replicas.',
    );
  }
}

export interface SqliteOwnerLock {
  release(): void;
}

/** Takes the ledger file's owner lock, or throws LedgerInUseError when another process (or connection) holds it. */
export function lockSqliteLedger(file: string): SqliteOwnerLock {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  const lockFile = `${file}.owner`;
  const db = new Database(lockFile);
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') throw new LedgerInUseError(file);
    throw error;
  }
  return {
    release: () => {
      if (db.open) db.close(); // rolls the transaction back and drops the lock
    },
  };
}
