import type { Kysely, Migration } from 'kysely';

/**
 * Versioned prompt templates: a name with versions 1, 2, 3..., each row immutable once written.
 * The primary key (name, version) is what makes "the next version" safe under concurrent creates:
 * a second writer that computed the same number inserts nothing and tries the next one.
 */
export const promptsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('prompts')
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('version', 'integer', (column) => column.notNull())
      .addColumn('template', 'text', (column) => column.notNull())
      .addColumn('variables', 'text', (column) => column.notNull())
      .addColumn('description', 'text')
      .addColumn('model_id', 'text')
      .addColumn('max_tokens', 'integer')
      .addColumn('temperature', 'double precision')
      .addColumn('top_p', 'double precision')
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addPrimaryKeyConstraint('prompts_pk', ['name', 'version'])
      .execute();
  },
};
