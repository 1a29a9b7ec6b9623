import type { Kysely, Migration } from 'kysely';

/**
 * Human feedback on generations: several pieces per generation (several reviewers), each kept.
 * `model_id` is copied from the generation (summaries and filters read one table); who may see a
 * piece follows the generation's caller, joined from the ledger.
 */
export const feedbackMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('feedback')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('generation_id', 'text', (column) => column.notNull().references('generations.id'))
      .addColumn('model_id', 'text', (column) => column.notNull())
      .addColumn('caller', 'text', (column) => column.notNull())
      .addColumn('score', 'double precision')
      .addColumn('thumbs', 'text')
      .addColumn('comment', 'text')
      .addColumn('correction', 'text')
      .addColumn('tags', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();
    // Lists are newest first; a generation's feedback (the DataLoader, the export) by generation.
    await db.schema.createIndex('feedback_by_time').on('feedback').columns(['created_at', 'id']).execute();
    await db.schema.createIndex('feedback_by_generation').on('feedback').columns(['generation_id', 'created_at', 'id']).execute();
  },
};
