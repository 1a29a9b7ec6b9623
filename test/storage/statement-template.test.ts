import {
  type CompiledQuery,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from 'kysely';
import { statementTemplate } from '../../src/storage/statement-template';

/* A template compiled once with placeholders must give, bound, exactly what Kysely compiles for the values. */

interface Tables {
  budget_usage: { budget_id: string; period_start: number; spent_units: number; reserved_units: number };
}

/** A Kysely that only compiles, in one dialect. */
function compilerOnly(
  Adapter: typeof SqliteAdapter | typeof PostgresAdapter,
  Introspector: typeof SqliteIntrospector | typeof PostgresIntrospector,
  Compiler: typeof SqliteQueryCompiler | typeof PostgresQueryCompiler,
): Kysely<Tables> {
  return new Kysely<Tables>({
    dialect: {
      createAdapter: () => new Adapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new Introspector(db),
      createQueryCompiler: () => new Compiler(),
    },
  });
}

const dialects = {
  sqlite: compilerOnly(SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler),
  postgres: compilerOnly(PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler),
};

const shape = (query: CompiledQuery) => ({ sql: query.sql, parameters: query.parameters });

describe.each(Object.entries(dialects))('statementTemplate (%s)', (_name, db) => {
  // A value used twice, a constant parameter among the values, a cast: what the budget statements do.
  const reserve = (id: unknown, amount: unknown): CompiledQuery =>
    sql`update budget_usage set reserved_units = reserved_units + cast(${amount} as bigint)
      where budget_id = ${id} and period_start = ${0} and spent_units + cast(${amount} as bigint) <= ${100}
      returning budget_id`.compile(db);

  it('binds each call to its own values: the same SQL and parameters as compiling them', () => {
    const bound = statementTemplate(2, reserve);
    for (const [id, amount] of [
      ['bud_a', 5],
      ['bud_b', 0],
      ['bud_a', 123_456_789],
    ] as const) {
      expect(shape(bound(id, amount))).toEqual(shape(reserve(id, amount)));
    }
  });

  it('works for queries Kysely builds, null values included', () => {
    const update = (status: unknown, error: unknown, id: unknown) =>
      db
        .updateTable('budget_usage')
        .set({ spent_units: status as number, reserved_units: error as number })
        .where('budget_id', '=', id as string)
        .compile();
    const bound = statementTemplate(3, update);
    expect(shape(bound(1, null, 'bud_c'))).toEqual(shape(update(1, null, 'bud_c')));
  });

  it('gives every bound statement a query id of its own', () => {
    const bound = statementTemplate(2, reserve);
    expect(bound('bud_a', 1).queryId).not.toBe(bound('bud_a', 1).queryId);
  });

  it('refuses a template that leaves a value out of its parameters', () => {
    expect(() =>
      statementTemplate<[unknown, unknown]>(2, (id) => sql`select * from budget_usage where budget_id = ${id}`.compile(db)),
    ).toThrow('values 1 are not parameters');
  });
});
