import type { Kysely, Migration } from 'kysely';

/** How many scorers a run may have: each has a score column, so variants aggregate in SQL. */
export const MAX_SCORERS = 10;

/**
 * Evaluation runs and their cells. A run's definition (prompt versions resolved to numbers, models,
 * normalized scorers, parameters) is fixed when it starts; its counters move in the transaction
 * that records each cell, so progress is exact across replicas. A cell is keyed by run, case,
 * prompt position and model position: recorded once, never redone.
 */
export const evaluationsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('evaluations')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('name', 'text')
      .addColumn('status', 'text', (column) => column.notNull())
      .addColumn('dataset_id', 'text', (column) => column.notNull())
      .addColumn('prompts', 'text', (column) => column.notNull())
      .addColumn('model_ids', 'text', (column) => column.notNull())
      .addColumn('scorers', 'text', (column) => column.notNull())
      .addColumn('parameters', 'text', (column) => column.notNull())
      .addColumn('caller', 'text', (column) => column.notNull())
      .addColumn('team', 'text')
      .addColumn('role', 'text', (column) => column.notNull())
      .addColumn('case_count', 'integer', (column) => column.notNull())
      .addColumn('total', 'integer', (column) => column.notNull())
      .addColumn('completed', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('failed', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('error', 'text')
      .addColumn('variants', 'text')
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'bigint')
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .execute();
    await db.schema.createIndex('evaluations_by_time').on('evaluations').columns(['created_at', 'id']).execute();
    await db.schema.createIndex('evaluations_by_status').on('evaluations').columns(['status']).execute();

    let cells = db.schema
      .createTable('evaluation_cells')
      .addColumn('evaluation_id', 'text', (column) => column.notNull().references('evaluations.id'))
      .addColumn('item_index', 'integer', (column) => column.notNull())
      .addColumn('prompt_index', 'integer', (column) => column.notNull())
      .addColumn('model_index', 'integer', (column) => column.notNull())
      .addColumn('generation_id', 'text')
      .addColumn('text', 'text')
      .addColumn('error', 'text')
      .addColumn('scores', 'text', (column) => column.notNull())
      .addColumn('mean_score', 'double precision', (column) => column.notNull())
      .addColumn('passed', 'integer', (column) => column.notNull())
      .addColumn('latency_ms', 'integer')
      .addColumn('total_tokens', 'integer', (column) => column.notNull())
      .addColumn('cost_units', 'bigint', (column) => column.notNull())
      .addColumn('finished_at', 'bigint', (column) => column.notNull());
    for (let index = 0; index < MAX_SCORERS; index += 1) cells = cells.addColumn(`score_${index}`, 'double precision');
    await cells.addPrimaryKeyConstraint('evaluation_cells_pk', ['evaluation_id', 'item_index', 'prompt_index', 'model_index']).execute();
    // A variant's latency percentile is an index walk.
    await db.schema
      .createIndex('evaluation_cells_by_latency')
      .on('evaluation_cells')
      .columns(['evaluation_id', 'prompt_index', 'model_index', 'latency_ms'])
      .execute();
  },
};
