import { type Kysely, type Migration, sql } from 'kysely';

/**
 * Budgets and their per-period counters, and each generation's hold on them. A budget is unique on (scope, subject, model_id,
 * period) with NULLs equal: the unique index is on coalesced expressions (a subject or model id
 * is never the empty string), which SQLite and PostgreSQL both enforce.
 */
export const budgetsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('budgets')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('scope', 'text', (column) => column.notNull())
      .addColumn('subject', 'text')
      .addColumn('model_id', 'text')
      .addColumn('limit_units', 'bigint', (column) => column.notNull())
      .addColumn('period', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('updated_at', 'bigint', (column) => column.notNull())
      .execute();
    await sql`create unique index budgets_unique on budgets (scope, coalesce(subject, ''), coalesce(model_id, ''), period)`.execute(db);
    await db.schema
      .createTable('budget_usage')
      .addColumn('budget_id', 'text', (column) => column.notNull().references('budgets.id').onDelete('cascade'))
      .addColumn('period_start', 'bigint', (column) => column.notNull())
      .addColumn('spent_units', 'bigint', (column) => column.notNull().defaultTo(0))
      .addColumn('reserved_units', 'bigint', (column) => column.notNull().defaultTo(0))
      .addPrimaryKeyConstraint('budget_usage_pk', ['budget_id', 'period_start'])
      .execute();
    // What a generation holds on its budgets while it runs, so that a hold whose process died can
    // be settled (at the full amount) by whoever closes the row.
    await db.schema
      .alterTable('generations')
      .addColumn('reserved_units', 'bigint', (column) => column.notNull().defaultTo(0))
      .execute();
    await db.schema.alterTable('generations').addColumn('budget_ids', 'text').execute();
  },
};
