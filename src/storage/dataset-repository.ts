import { CompiledQuery, type Kysely, type Selectable } from 'kysely';
import { type GuardedStatement, type LedgerDatabase, TransactionConditionError } from './database';
import {
  type DatasetItemPage,
  type DatasetItemRecord,
  type DatasetRecord,
  DatasetFullError,
  DatasetNotFoundError,
  MAX_DATASET_ITEMS,
  type NewDataset,
  type NewDatasetItem,
} from './dataset-types';
import { newDatasetId } from './generation-id';
import type { Database, DatasetItemsTable, DatasetsTable } from './schema';
import { InvalidCursorError } from './storage-errors';

/**
 * The most rows one INSERT carries: 2 parameters a row, far below SQLite's 32,766 and PostgreSQL's
 * 65,535. Smaller chunks are powers of two, so whatever the item count there are at most 11
 * distinct SQL texts, and SQLite's statement cache (statement-cache.ts) keeps them prepared.
 */
const MAX_CHUNK_ROWS = 1024;
/** The largest page `items` serves. */
export const MAX_DATASET_PAGE_SIZE = 1000;

/**
 * Datasets of test cases, shared by every caller. A dataset's `item_count` is reserved and its
 * items inserted in one transaction, so concurrent appends get disjoint, gapless index ranges and
 * an append never takes a dataset past MAX_DATASET_ITEMS.
 */
export class DatasetRepository {
  private readonly db: Kysely<Database>;
  private readonly insertTexts = new Map<number, string>();

  constructor(
    private readonly database: LedgerDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.db = database.db;
  }

  /** Stores a dataset with its items at indices 0 to n - 1, in one transaction. */
  async create(dataset: NewDataset): Promise<DatasetRecord> {
    if (dataset.items.length > MAX_DATASET_ITEMS) throw new RangeError(`a dataset holds at most ${MAX_DATASET_ITEMS} items`);
    const createdAt = this.now();
    const row: Selectable<DatasetsTable> = {
      id: newDatasetId(createdAt),
      name: dataset.name,
      description: dataset.description,
      item_count: dataset.items.length,
      created_at: createdAt.getTime(),
    };
    await this.database.transaction([this.db.insertInto('datasets').values(row).compile(), ...this.insertItems(row.id, dataset.items)]);
    return toDataset(row);
  }

  /**
   * Adds items after the last one and answers the dataset as it is then. Throws
   * DatasetNotFoundError for a missing dataset, and DatasetFullError (adding nothing) when the
   * dataset would hold more than MAX_DATASET_ITEMS.
   */
  async append(datasetId: string, items: readonly NewDatasetItem[]): Promise<DatasetRecord> {
    // Raising the count locks the row (PostgreSQL) or holds the write lock (SQLite) until commit:
    // a concurrent append waits, then re-checks the limit on the count this one left.
    const reserve = this.db
      .updateTable('datasets')
      .set((eb) => ({ item_count: eb('item_count', '+', items.length) }))
      .where('id', '=', datasetId)
      .where((eb) => eb(eb('item_count', '+', items.length), '<=', MAX_DATASET_ITEMS))
      .returningAll()
      .compile();
    const explain = this.db.selectFrom('datasets').select('item_count').where('id', '=', datasetId).compile();
    try {
      const [reserved] = await this.database.transaction([
        { query: reserve, expectChanges: 1, explain, label: 'reserve' },
        ...this.insertItems(datasetId, items),
      ]);
      return toDataset(reserved!.rows[0] as Selectable<DatasetsTable>);
    } catch (error) {
      if (error instanceof TransactionConditionError && error.statementIndex === 0) {
        const found = error.explanation[0];
        if (!found) throw new DatasetNotFoundError(datasetId);
        throw new DatasetFullError(datasetId, Number(found.item_count), items.length);
      }
      throw error;
    }
  }

  /** Every dataset, newest first. */
  async list(): Promise<DatasetRecord[]> {
    const rows = await this.db.selectFrom('datasets').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map(toDataset);
  }

  async get(id: string): Promise<DatasetRecord | undefined> {
    const row = await this.db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toDataset(row);
  }

  /** At most `limit` items from `fromIndex` on, by index ascending (none for a missing dataset). */
  async items(datasetId: string, fromIndex: number, limit: number): Promise<DatasetItemRecord[]> {
    const rows = await this.db
      .selectFrom('dataset_items')
      .select(['item_index', 'variables', 'expected'])
      .where('dataset_id', '=', datasetId)
      .where('item_index', '>=', fromIndex)
      .orderBy('item_index')
      .limit(limit)
      .execute();
    return rows.map(toItem);
  }

  /**
   * A page of a dataset's items in index order. Throws DatasetNotFoundError for a missing dataset
   * and InvalidCursorError for a cursor it did not issue.
   */
  async page(datasetId: string, page: { readonly limit: number; readonly cursor?: string | null }): Promise<DatasetItemPage> {
    if (!Number.isSafeInteger(page.limit) || page.limit < 1 || page.limit > MAX_DATASET_PAGE_SIZE) {
      throw new RangeError(`a page holds 1 to ${MAX_DATASET_PAGE_SIZE} items, not ${page.limit}`);
    }
    const fromIndex = page.cursor ? decodeItemCursor(page.cursor) : 0;
    const [dataset, items] = await Promise.all([this.get(datasetId), this.items(datasetId, fromIndex, page.limit + 1)]);
    if (!dataset) throw new DatasetNotFoundError(datasetId);
    const last = items[page.limit - 1];
    return { items: items.slice(0, page.limit), nextCursor: items.length > page.limit && last ? encodeItemCursor(last.index + 1) : null };
  }

  /**
   * The items as INSERT … SELECT statements that read their indices from the dataset's row, after
   * the same transaction has raised its item_count by `items.length`: the items end at the new
   * item_count - 1. Each must insert all its rows.
   */
  private insertItems(datasetId: string, items: readonly NewDatasetItem[]): GuardedStatement[] {
    const statements: GuardedStatement[] = [];
    let offset = 0;
    for (const size of chunkSizes(items.length)) {
      const parameters: unknown[] = [items.length - offset];
      for (let index = offset; index < offset + size; index += 1) {
        parameters.push(JSON.stringify(items[index]!.variables), items[index]!.expected);
      }
      parameters.push(datasetId);
      statements.push({ query: CompiledQuery.raw(this.insertText(size), parameters), expectChanges: size, label: 'items' });
      offset += size;
    }
    return statements;
  }

  /**
   * The SQL of a chunk of `rows` items, written once per size: built with Kysely's `sql` it cost
   * more than running it (a few frozen nodes per item). Parameters: how far from the end of the
   * reserved range the chunk starts, (variables, expected) per row, the dataset id.
   */
  private insertText(rows: number): string {
    let text = this.insertTexts.get(rows);
    if (text === undefined) {
      let count = 0;
      const parameter = this.database.kind === 'postgres' ? () => `$${++count}` : () => '?';
      const fromEnd = parameter();
      const values = Array.from({ length: rows }, (_, position) => `(${position}, ${parameter()}, ${parameter()})`).join(', ');
      // VALUES names its columns column1, column2… in SQLite and PostgreSQL alike.
      text =
        'insert into dataset_items (dataset_id, item_index, variables, expected) ' +
        `select d.id, d.item_count - ${fromEnd} + v.column1, v.column2, v.column3 ` +
        `from datasets d cross join (values ${values}) as v where d.id = ${parameter()}`;
      this.insertTexts.set(rows, text);
    }
    return text;
  }
}

/** Full chunks, then the rest as descending powers of two (37 → 32, 4, 1). */
function chunkSizes(count: number): number[] {
  const sizes: number[] = [];
  let left = count;
  for (; left >= MAX_CHUNK_ROWS; left -= MAX_CHUNK_ROWS) sizes.push(MAX_CHUNK_ROWS);
  for (let size = MAX_CHUNK_ROWS / 2; size >= 1; size /= 2) {
    if (left >= size) {
      sizes.push(size);
      left -= size;
    }
  }
  return sizes;
}

const ITEM_POSITION = /^item:(\d{1,5})$/;

function encodeItemCursor(index: number): string {
  return Buffer.from(`item:${index}`, 'utf8').toString('base64url');
}

/** The index a cursor from `encodeItemCursor` starts at; anything else is an InvalidCursorError. */
function decodeItemCursor(cursor: string): number {
  const match = ITEM_POSITION.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const index = Number(match?.[1]);
  // Base64 decoding forgives stray characters; only the exact text we issued is accepted.
  if (!match || index > MAX_DATASET_ITEMS || encodeItemCursor(index) !== cursor) throw new InvalidCursorError(cursor);
  return index;
}

function toDataset(row: Selectable<DatasetsTable>): DatasetRecord {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    itemCount: Number(row.item_count),
    createdAt: new Date(Number(row.created_at)),
  };
}

function toItem(row: Pick<Selectable<DatasetItemsTable>, 'item_index' | 'variables' | 'expected'>): DatasetItemRecord {
  return { index: Number(row.item_index), variables: JSON.parse(row.variables) as Record<string, string>, expected: row.expected };
}
