import { openDatabase, type DatabaseKind } from './database';
import { LedgerRepository } from './ledger-repository';
import { DatabaseSchemaTooNewError } from './storage-errors';

export interface LedgerSettings {
  /** False (LEDGER=off, benchmarks only): no database is opened and nothing is recorded. */
  readonly enabled: boolean;
  /** A secret (it holds the password): never logged. */
  readonly databaseUrl: string | undefined;
  readonly sqliteFile: string;
  readonly recordContent: boolean;
  /** The longest a generation can run (UPSTREAM_TIMEOUT_MS): an older in-progress row on a shared database belongs to a dead replica. */
  readonly longestGenerationMs: number;
  readonly onBackgroundError: (message: string) => void;
}

export interface OpenLedger {
  readonly kind: DatabaseKind | 'off';
  /** Undefined when the ledger is off. */
  readonly repository: LedgerRepository | undefined;
  /** Whether the database answers; never throws. */
  ping(): Promise<boolean>;
  /** Waits for every pending write, then closes the database. */
  close(): Promise<void>;
}

/** How often a shared database is swept for rows that dead replicas left in progress. */
const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_MARGIN_MS = 60_000;

/**
 * Opens (and migrates) the ledger's database and closes what a previous run left in progress: on
 * the embedded SQLite file, which one process owns, every such row at once; on a PostgreSQL that
 * replicas share, only rows older than any live generation could be, at start and then every minute.
 */
export async function openLedger(settings: LedgerSettings): Promise<OpenLedger> {
  if (!settings.enabled) return { kind: 'off', repository: undefined, ping: async () => true, close: async () => undefined };
  const store = settings.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `SQLite (${settings.sqliteFile})`;
  const database = await openDatabase({
    databaseUrl: settings.databaseUrl,
    sqliteFile: settings.sqliteFile,
    onBackgroundError: settings.onBackgroundError,
  }).catch((error: unknown) => {
    if (error instanceof DatabaseSchemaTooNewError) throw error;
    // The driver's message names the host or file, never the URL's password.
    throw new Error(`cannot open the ledger database, ${store}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  });
  const repository = new LedgerRepository(database, { recordContent: settings.recordContent });
  let sweeper: NodeJS.Timeout | undefined;
  if (database.kind === 'sqlite') {
    await repository.closeInterrupted(undefined, { atStartup: true });
  } else {
    const sweep = (): Promise<number> => repository.closeInterrupted(new Date(Date.now() - settings.longestGenerationMs - SWEEP_MARGIN_MS));
    await sweep();
    sweeper = setInterval(() => {
      sweep().catch((error: unknown) => settings.onBackgroundError(`sweeping interrupted generations failed: ${String(error)}`));
    }, SWEEP_INTERVAL_MS);
    sweeper.unref();
  }
  return {
    kind: database.kind,
    repository,
    ping: () => database.ping(),
    async close() {
      clearInterval(sweeper);
      await repository.close();
      await database.close();
    },
  };
}
