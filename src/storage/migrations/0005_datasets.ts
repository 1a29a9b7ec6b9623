import type { Kysely, Migration } from 'kysely';

/**
 * Evaluation datasets: named lists of test cases, shared by every caller. `item_count` is the
 * number of cases and the next free `item_index`: an append raises it and inserts at the indices it
 * reserved in the same transaction, so indices are 0 to item_count - 1 without gaps.
 */
export const datasetsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('datasets')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('description', 'text')
      .addColumn('item_count', 'integer', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();
    // The list is newest first.
    await db.schema.createIndex('datasets_by_time').on('datasets').columns(['created_at', 'id']).execute();
    await db.schema
      .createTable('dataset_items')
      .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
      .addColumn('item_index', 'integer', (column) => column.notNull())
      .addColumn('variables', 'text', (column) => column.notNull())
      .addColumn('expected', 'text')
      .addPrimaryKeyConstraint('dataset_items_pkey', ['dataset_id', 'item_index'])
      .execute();
  },
};
