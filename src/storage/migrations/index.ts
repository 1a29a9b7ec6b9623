import type { Migration } from 'kysely';
import { generationsMigration } from './0001_generations';
import { budgetsMigration } from './0002_budgets';
import { feedbackMigration } from './0003_feedback';

/**
 * Every migration the code knows, by name. Names sort in the order they apply; a new one gets
 * the next number and is never edited once released (databases record the names they ran).
 */
export const ledgerMigrations: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_generations': generationsMigration,
  '0002_budgets': budgetsMigration,
  '0003_feedback': feedbackMigration,
});
