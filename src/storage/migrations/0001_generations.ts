import { type Kysely, type Migration, sql } from 'kysely';

/** The ledger: one row per generation, with the indexes the list and usage queries walk. */
export const generationsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('generations')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('request_id', 'text', (column) => column.notNull())
      .addColumn('caller', 'text', (column) => column.notNull())
      .addColumn('team', 'text')
      .addColumn('source', 'text', (column) => column.notNull())
      .addColumn('model_id', 'text', (column) => column.notNull())
      .addColumn('provider', 'text', (column) => column.notNull())
      .addColumn('upstream_model', 'text', (column) => column.notNull())
      .addColumn('status', 'text', (column) => column.notNull())
      .addColumn('error', 'text')
      .addColumn('finish_reason', 'text')
      .addColumn('prompt', 'text')
      .addColumn('text', 'text')
      .addColumn('prompt_name', 'text')
      .addColumn('prompt_version', 'integer')
      .addColumn('evaluation_id', 'text')
      .addColumn('max_tokens', 'integer', (column) => column.notNull())
      .addColumn('temperature', 'double precision', (column) => column.notNull())
      .addColumn('top_p', 'double precision', (column) => column.notNull())
      .addColumn('input_tokens', 'integer', (column) => column.notNull())
      .addColumn('output_tokens', 'integer', (column) => column.notNull())
      .addColumn('cost_units', 'bigint', (column) => column.notNull())
      .addColumn('latency_ms', 'integer')
      .addColumn('attempts', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('finished_at', 'bigint')
      .execute();
    // Every list and usage query is a time range, newest first, optionally narrowed by one of these.
    const timeOrdered = ['created_at', 'id'] as const;
    await db.schema
      .createIndex('generations_by_time')
      .on('generations')
      .columns([...timeOrdered])
      .execute();
    // Members' reads and usage by caller walk the caller index; a model filter, the model index. Team and
    // status are filtered on the way (no read narrows by team alone, and every read skips the open rows):
    // two fewer B-trees cut the SQLite work of recording a generation by about a third.
    for (const column of ['caller', 'model_id'] as const) {
      await db.schema
        .createIndex(`generations_by_${column}`)
        .on('generations')
        .columns([column, ...timeOrdered])
        .execute();
    }
    // Only the rows still in progress: what start-up (and the PostgreSQL sweep) closes as interrupted.
    await db.schema
      .createIndex('generations_in_progress')
      .on('generations')
      .column('created_at')
      .where(sql.ref('status'), '=', sql.lit('in_progress'))
      .execute();
  },
};
