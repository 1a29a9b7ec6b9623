/** The database holds migrations this build does not know: it was migrated by a newer LLMOP. */
export class DatabaseSchemaTooNewError extends Error {
  override readonly name = 'DatabaseSchemaTooNewError';

  constructor(readonly unknownMigrations: readonly string[]) {
    super(
      `The ledger database was migrated by a newer LLMOP: it has applied ${unknownMigrations.map((name) => `"${name}"`).join(', ')}, ` +
        'which this version does not know. Upgrade LLMOP to the version that migrated it (or point it at another database).',
    );
  }
}

/** A paging cursor that this ledger did not issue (the service answers 400 validation_error). */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';

  constructor(readonly cursor: string) {
    super('The cursor is not one that this ledger issued');
  }
}

/** `finish` for an id that this process did not `start` (or whose start failed): a wiring bug. */
export class GenerationNotStartedError extends Error {
  override readonly name = 'GenerationNotStartedError';

  constructor(readonly generationId: string) {
    super(`Generation "${generationId}" was not started by this ledger, or its start was not recorded`);
  }
}

/** A write after the ledger was closed. */
export class LedgerClosedError extends Error {
  override readonly name = 'LedgerClosedError';

  constructor() {
    super('The ledger is closed');
  }
}
