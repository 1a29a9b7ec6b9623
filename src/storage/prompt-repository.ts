import { type Kysely, type Selectable, type SqlBool, sql } from 'kysely';
import type { LedgerDatabase } from './database';
import { type PromptVersionInput, type PromptVersionRecord, PromptVersionContentionError } from './prompt-types';
import type { Database, PromptsTable } from './schema';

export type { PromptParameters, PromptVersionInput, PromptVersionRecord } from './prompt-types';

/**
 * How often one create computes the next number again after a concurrent create took it. Every
 * round lets at least one of the racing creates through, so only more than this many creates of
 * one name at the same instant can exhaust it.
 */
const MAX_VERSION_ATTEMPTS = 64;

/** Versioned prompt templates, shared by every caller. A version is never changed once written. */
export class PromptRepository {
  private readonly db: Kysely<Database>;

  constructor(
    private readonly database: LedgerDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.db = database.db;
  }

  /**
   * Writes the next version of `input.name` (1 for a new name). The number is computed by the
   * insert itself; on PostgreSQL two concurrent creates can compute the same one, and the primary
   * key lets only the first in: the second inserts nothing (after the first commits) and tries the
   * following number. On SQLite the writing connection runs one statement at a time, so the first
   * try always succeeds. Throws PromptVersionContentionError when no number came free.
   */
  async create(input: PromptVersionInput): Promise<PromptVersionRecord> {
    for (let attempt = 1; attempt <= MAX_VERSION_ATTEMPTS; attempt += 1) {
      const createdAt = this.now();
      const insert = this.db
        .insertInto('prompts')
        .values({
          name: input.name,
          version: (eb) =>
            eb.selectFrom('prompts').select(sql<number>`coalesce(max(version), 0) + 1`.as('next_version')).where('name', '=', input.name),
          template: input.template,
          variables: JSON.stringify(input.variables),
          description: input.description,
          model_id: input.modelId,
          max_tokens: input.parameters?.maxTokens ?? null,
          temperature: input.parameters?.temperature ?? null,
          top_p: input.parameters?.topP ?? null,
          created_at: createdAt.getTime(),
        })
        .onConflict((conflict) => conflict.columns(['name', 'version']).doNothing())
        .returning('version')
        .compile();
      const [result] = await this.database.transaction([insert]);
      const inserted = result?.rows[0];
      if (inserted) {
        return {
          name: input.name,
          version: Number(inserted.version),
          template: input.template,
          variables: [...input.variables],
          description: input.description,
          modelId: input.modelId,
          parameters: parametersOf(
            input.parameters?.maxTokens ?? null,
            input.parameters?.temperature ?? null,
            input.parameters?.topP ?? null,
          ),
          createdAt,
        };
      }
    }
    throw new PromptVersionContentionError(input.name, MAX_VERSION_ATTEMPTS);
  }

  /** One version of a prompt, or its newest when `version` is absent; undefined when there is none. */
  async find(name: string, version?: number): Promise<PromptVersionRecord | undefined> {
    let query = this.db.selectFrom('prompts').selectAll().where('name', '=', name);
    query = version === undefined ? query.orderBy('version', 'desc').limit(1) : query.where('version', '=', version);
    const row = await query.executeTakeFirst();
    return row && toRecord(row);
  }

  /** Every version of one prompt, newest first; empty when the name has none. */
  async versions(name: string): Promise<PromptVersionRecord[]> {
    const rows = await this.db.selectFrom('prompts').selectAll().where('name', '=', name).orderBy('version', 'desc').execute();
    return rows.map(toRecord);
  }

  /** The newest version of every prompt, the most recently changed prompt first. */
  async latest(): Promise<PromptVersionRecord[]> {
    const rows = await this.db
      .selectFrom('prompts as p')
      .selectAll('p')
      .where(sql<SqlBool>`p.version = (select max(q.version) from prompts q where q.name = p.name)`)
      .execute();
    // Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order disagree on text.
    return rows
      .map(toRecord)
      .sort(
        (left, right) =>
          right.createdAt.getTime() - left.createdAt.getTime() || (left.name < right.name ? -1 : left.name > right.name ? 1 : 0),
      );
  }
}

function parametersOf(maxTokens: number | null, temperature: number | null, topP: number | null): PromptVersionRecord['parameters'] {
  if (maxTokens === null && temperature === null && topP === null) return null;
  return {
    ...(maxTokens === null ? {} : { maxTokens: Number(maxTokens) }),
    ...(temperature === null ? {} : { temperature: Number(temperature) }),
    ...(topP === null ? {} : { topP: Number(topP) }),
  };
}

function toRecord(row: Selectable<PromptsTable>): PromptVersionRecord {
  return {
    name: row.name,
    version: Number(row.version),
    template: row.template,
    variables: JSON.parse(row.variables) as string[],
    description: row.description,
    modelId: row.model_id,
    parameters: parametersOf(row.max_tokens, row.temperature, row.top_p),
    createdAt: new Date(Number(row.created_at)),
  };
}
