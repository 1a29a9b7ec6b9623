import type BetterSqlite3 from 'better-sqlite3';

const MAX_CACHED_STATEMENTS = 256;

/**
 * `db.prepare`, once per distinct SQL text: preparing costs tens of microseconds, running a
 * prepared statement a few. Bounded (cleared past 256 texts). A statement being iterated cannot run
 * again meanwhile, so only callers that never stream may share it; SQLite re-prepares a statement
 * by itself when the schema changes.
 */
export function preparedOnce(db: BetterSqlite3.Database): (sql: string) => BetterSqlite3.Statement {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return (sql) => {
    let statement = statements.get(sql);
    if (!statement) {
      if (statements.size >= MAX_CACHED_STATEMENTS) statements.clear();
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
}
