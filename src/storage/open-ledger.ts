import { openDatabase, type DatabaseKind } from './database';
import { BudgetRepository } from './budget-repository';
import type { BudgetCounter } from './budget-types';
import { DatasetRepository } from './dataset-repository';
import { EvaluationRepository } from './evaluation-repository';
import { FeedbackRepository } from './feedback-repository';
import { LedgerRepository } from './ledger-repository';
import { PromptRepository } from './prompt-repository';
import { LedgerInUseError, lockSqliteLedger, type SqliteOwnerLock } from './sqlite-owner-lock';
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
  /** Told every query's SQL text and duration (LOG_LEVEL=trace). */
  readonly onQuery?: (sql: string, durationMs: number) => void;
  /** Told of every committed budget settlement (budget alerts). */
  readonly onBudgetSettled?: (counters: readonly BudgetCounter[], addedUnits: number) => void;
}

export interface OpenLedger {
  readonly kind: DatabaseKind | 'off';
  /** Undefined when the ledger is off. */
  readonly repository: LedgerRepository | undefined;
  /** Budgets and their counters, in the same database; undefined when the ledger is off. */
  readonly budgets: BudgetRepository | undefined;
  /** Human feedback on the generations, in the same database; undefined when the ledger is off. */
  readonly feedback: FeedbackRepository | undefined;
  /** Versioned prompt templates, in the same database; undefined when the ledger is off. */
  readonly prompts: PromptRepository | undefined;
  /** Evaluation datasets, in the same database; undefined when the ledger is off. */
  readonly datasets: DatasetRepository | undefined;
  /** Evaluation runs and their cells, in the same database; undefined when the ledger is off. */
  readonly evaluations: EvaluationRepository | undefined;
  /** Whether the database answers; never throws. */
  ping(): Promise<boolean>;
  /** Waits for every pending write, then closes the database. */
  close(): Promise<void>;
}

/** How often the database is swept for rows left in progress; a hold expires within the deadline plus 25 s. */
const SWEEP_INTERVAL_MS = 10_000;
const SWEEP_MARGIN_MS = 15_000;

/**
 * Opens (and migrates) the ledger's database and closes what a previous run left in progress: on
 * the embedded SQLite file, which one process owns, every such row at once; on a PostgreSQL that
 * replicas share, only rows older than any live generation could be. Then, on both, such rows are
 * swept every 10 s, settling their budget holds at the full amount.
 */
export async function openLedger(settings: LedgerSettings): Promise<OpenLedger> {
  if (!settings.enabled) {
    return {
      kind: 'off',
      repository: undefined,
      budgets: undefined,
      feedback: undefined,
      prompts: undefined,
      datasets: undefined,
      evaluations: undefined,
      ping: async () => true,
      close: async () => undefined,
    };
  }
  const store = settings.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `SQLite (${settings.sqliteFile})`;
  // Before anything reads or writes the file: a second process must not cancel this one's rows.
  const ownerLock = settings.databaseUrl ? undefined : lockLedgerFile(settings.sqliteFile, store);
  const database = await openDatabase({
    databaseUrl: settings.databaseUrl,
    sqliteFile: settings.sqliteFile,
    onBackgroundError: settings.onBackgroundError,
    onQuery: settings.onQuery,
  }).catch((error: unknown) => {
    ownerLock?.release();
    if (error instanceof DatabaseSchemaTooNewError) throw error;
    throw cannotOpen(store, error);
  });
  // On SQLite the owner lock makes this process the file's only writer: budget holds can live in its memory.
  const budgets = new BudgetRepository(database, { soleWriter: ownerLock !== undefined });
  const repository = new LedgerRepository(database, {
    recordContent: settings.recordContent,
    budgets,
    onBudgetSettled: settings.onBudgetSettled,
  });
  // Rows older than any live generation could be (their process died, or their finish could not be
  // written) are closed, and their budget holds settled, within the deadline plus SWEEP_MARGIN_MS
  // plus SWEEP_INTERVAL_MS.
  const sweep = (): Promise<number> => repository.closeInterrupted(new Date(Date.now() - settings.longestGenerationMs - SWEEP_MARGIN_MS));
  if (database.kind === 'sqlite') await repository.closeInterrupted(undefined, { atStartup: true });
  else await sweep();
  const sweeper = setInterval(() => {
    sweep().catch((error: unknown) => settings.onBackgroundError(`sweeping interrupted generations failed: ${String(error)}`));
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();
  return {
    kind: database.kind,
    repository,
    budgets,
    feedback: new FeedbackRepository(database),
    prompts: new PromptRepository(database),
    datasets: new DatasetRepository(database),
    evaluations: new EvaluationRepository(database),
    ping: () => database.ping(),
    async close() {
      clearInterval(sweeper);
      await repository.close();
      await database.close();
      ownerLock?.release();
    },
  };
}

// The driver's message names the host or file, never the URL's password.
function cannotOpen(store: string, error: unknown): Error {
  return new Error(`cannot open the ledger database, ${store}: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}

function lockLedgerFile(file: string, store: string): SqliteOwnerLock {
  try {
    return lockSqliteLedger(file);
  } catch (error) {
    if (error instanceof LedgerInUseError) throw error;
    throw cannotOpen(store, error);
  }
}
