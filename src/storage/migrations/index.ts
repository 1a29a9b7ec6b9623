import type { Migration } from 'kysely';
import { generationsMigration } from './0001_generations';
import { budgetsMigration } from './0002_budgets';
import { feedbackMigration } from './0003_feedback';
import { promptsMigration } from './0004_prompts';
import { datasetsMigration } from './0005_datasets';
import { evaluationsMigration } from './0006_evaluations';

/**
 * Every migration the code knows, by name. Names sort in the order they apply; a new one gets
 * the next number and is never edited once released (databases record the names they ran).
 */
export const ledgerMigrations: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_generations': generationsMigration,
  '0002_budgets': budgetsMigration,
  '0003_feedback': feedbackMigration,
  '0004_prompts': promptsMigration,
  '0005_datasets': datasetsMigration,
  '0006_evaluations': evaluationsMigration,
});
