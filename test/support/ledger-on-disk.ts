import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { readRowJournal } from '../../src/storage/row-journal';

type Column = 'id' | 'status' | 'prompt' | 'text' | 'output_tokens' | 'evaluation_id' | 'created_at';

/**
 * The SQLite ledger's generations as a stopped (or killed) process left them on disk, read before
 * anything else opens the files: the rows in `llmop.db` and those in its journal beside it
 * (src/storage/row-journal.ts), which the next start commits. Per generation the latest state: a
 * finished one over a start, as the replay does. Oldest first.
 */
export function generationsOnDisk<Row>(dataDir: string, columns: readonly Column[], where?: { evaluation_id: string }): Row[] {
  const file = path.join(dataDir, 'llmop.db');
  const database = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  let stored: Array<Record<string, unknown>>;
  try {
    const select = `select ${[...new Set([...columns, 'id', 'status', 'created_at'])].join(', ')} from generations`;
    stored = (
      where ? database.prepare(`${select} where evaluation_id = ?`).all(where.evaluation_id) : database.prepare(select).all()
    ) as Array<Record<string, unknown>>;
  } finally {
    database.close();
  }
  const byId = new Map(stored.map((row) => [row.id as string, row]));
  for (const row of readRowJournal<Record<string, unknown>>(file)) {
    if (where && row.evaluation_id !== where.evaluation_id) continue;
    const seen = byId.get(row.id as string);
    if (!seen || seen.status === 'in_progress') byId.set(row.id as string, row);
  }
  return [...byId.values()]
    .sort((left, right) => Number(left.created_at) - Number(right.created_at) || String(left.id).localeCompare(String(right.id)))
    .map((row) => Object.fromEntries(columns.map((column) => [column, row[column]])) as Row);
}
