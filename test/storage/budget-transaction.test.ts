import { sql } from 'kysely';
import {
  type LedgerDatabase,
  openDatabase,
  type StatementResult,
  TransactionConditionError,
  type TransactionStatement,
} from '../../src/storage/database';
import { type LedgerStore, postgresStore, sqliteStore } from './ledger-stores';

/*
 * LedgerDatabase.transaction, the groundwork of budget reservations: several statements commit
 * together or not at all, on the embedded SQLite file (on its one writing connection) and on PostgreSQL.
 */

describe.each([
  ['SQLite', sqliteStore],
  ['PostgreSQL', postgresStore],
] as const)('transactions on %s', (_name, makeStore) => {
  const store: LedgerStore = makeStore();
  let database: LedgerDatabase;
  let other: LedgerDatabase;

  const insert = (id: number, value: string) => sql`insert into tx_items (id, value) values (${id}, ${value})`.compile(database.db);
  const values = async (through: LedgerDatabase = database): Promise<string[]> =>
    (await sql<{ value: string }>`select value from tx_items order by id`.execute(through.db)).rows.map((row) => row.value);

  beforeAll(async () => {
    await store.setUp();
    const settings = await store.freshDatabase();
    database = await openDatabase(settings);
    other = await openDatabase(settings); // another connection (on SQLite, another writing connection too)
    await sql`create table tx_items (id integer primary key, value text not null, counter integer not null default 0)`.execute(database.db);
  });
  beforeEach(async () => {
    await database.write(sql`delete from tx_items`.compile(database.db));
  });
  afterAll(async () => {
    await other?.close();
    await database?.close();
    await store.tearDown();
  });

  it('commits every statement and answers each one its changes and returned rows, in order', async () => {
    const results = await database.transaction([
      insert(1, 'one'),
      insert(2, 'two'),
      sql`update tx_items set counter = counter + 5 where id <= 2 returning id, counter`.compile(database.db),
      sql`select count(*) as count from tx_items`.compile(database.db),
      sql`delete from tx_items where id = 99`.compile(database.db),
    ]);
    expect(results.map((result) => result.changes)).toEqual([1, 1, 2, 0, 0]);
    expect(results[0]!.rows).toEqual([]);
    const updated = [...results[2]!.rows].map((row) => ({ id: Number(row.id), counter: Number(row.counter) }));
    expect(updated.sort((left, right) => left.id - right.id)).toEqual([
      { id: 1, counter: 5 },
      { id: 2, counter: 5 },
    ]);
    expect(Number(results[3]!.rows[0]!.count)).toBe(2);
    expect(await values(other)).toEqual(['one', 'two']); // committed: another connection sees it
  });

  it('rolls every statement back when a later one fails, and rejects with that error', async () => {
    await database.transaction([insert(1, 'kept')]);
    const failing = database.transaction([
      insert(2, 'rolled back'),
      sql`update tx_items set value = 'changed' where id = 1`.compile(database.db),
      insert(1, 'duplicate'), // primary key violation
    ]);
    await expect(failing).rejects.toMatchObject({ code: database.kind === 'sqlite' ? 'SQLITE_CONSTRAINT_PRIMARYKEY' : '23505' });
    expect(await values()).toEqual(['kept']);
    expect(await values(other)).toEqual(['kept']);
    // The connection goes on committing.
    await database.transaction([insert(3, 'after')]);
    expect(await database.write(insert(4, 'single'))).toBe(1);
    expect(await values()).toEqual(['kept', 'after', 'single']);
  });

  it('rolls back when a statement misses its expected changes, explaining what it found', async () => {
    await database.transaction([insert(1, 'one')]);
    const guarded: TransactionStatement[] = [
      insert(2, 'two'),
      {
        query: sql`update tx_items set counter = counter + 1 where id = 1 and counter >= 10 returning id`.compile(database.db),
        expectChanges: 1,
        explain: sql`select id, counter from tx_items where id = 1`.compile(database.db),
        label: 'needs ten',
      },
      insert(3, 'three'),
    ];
    const error = await database.transaction(guarded).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(TransactionConditionError);
    const condition = error as TransactionConditionError;
    expect(condition.statementIndex).toBe(1);
    expect(condition.label).toBe('needs ten');
    expect(condition.changes).toBe(0);
    expect(condition.explanation.map((row) => ({ id: Number(row.id), counter: Number(row.counter) }))).toEqual([{ id: 1, counter: 0 }]);
    expect(await values()).toEqual(['one']);
  });

  it('commits when every guarded statement changes what it expects', async () => {
    await database.transaction([insert(1, 'one')]);
    const results = await database.transaction([
      { query: sql`update tx_items set counter = counter + 1 where id = 1`.compile(database.db), expectChanges: 1 },
      { query: sql`delete from tx_items where id = 42`.compile(database.db), expectChanges: 0 },
    ]);
    expect(results).toEqual<StatementResult[]>([
      { changes: 1, rows: [] },
      { changes: 0, rows: [] },
    ]);
  });

  it('never interleaves concurrent transactions, from one connection or two', async () => {
    await database.transaction([insert(1, 'counter')]);
    // Read-modify-write in SQL: each transaction checks the counter it sees and bumps it. Without
    // isolation of the conditional update, two could pass the same check.
    const bump = (through: LedgerDatabase) =>
      through
        .transaction([
          {
            query: sql`update tx_items set counter = counter + 1 where id = 1 and counter < 30`.compile(through.db),
            expectChanges: 1,
          },
        ])
        .then(
          () => true,
          (error: unknown) => {
            if (error instanceof TransactionConditionError) return false;
            throw error;
          },
        );
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, index) => bump(index % 2 === 0 ? database : other)));
    expect(outcomes.filter(Boolean)).toHaveLength(30);
    const counter = await sql<{ counter: number }>`select counter from tx_items where id = 1`.execute(database.db);
    expect(Number(counter.rows[0]!.counter)).toBe(30);
  });

  it('an empty transaction commits nothing and answers no results', async () => {
    expect(await database.transaction([])).toEqual([]);
  });

  it('runs several transactions at once (on SQLite in one commit): each fails alone, the rest commit', async () => {
    await database.transaction([insert(1, 'one')]);
    const settled = await database.transactions([
      [insert(2, 'two'), sql`update tx_items set counter = counter + 1 where id = 1 returning counter`.compile(database.db)],
      // Misses its condition: its insert is rolled back, not the others'.
      [
        insert(3, 'rolled back'),
        { query: sql`update tx_items set counter = 1 where id = 1 and counter >= 10`.compile(database.db), expectChanges: 1, label: 'ten' },
      ],
      [insert(4, 'four')],
      // Throws (primary key): rolled back alone.
      [insert(5, 'rolled back too'), insert(1, 'duplicate')],
      [],
    ]);
    expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    const [first, condition, third, constraint, empty] = settled;
    expect((first as PromiseFulfilledResult<StatementResult[]>).value.map((result) => result.changes)).toEqual([1, 1]);
    expect(Number((first as PromiseFulfilledResult<StatementResult[]>).value[1]!.rows[0]!.counter)).toBe(1);
    expect((condition as PromiseRejectedResult).reason).toBeInstanceOf(TransactionConditionError);
    expect((condition as PromiseRejectedResult).reason).toMatchObject({ statementIndex: 1, label: 'ten', changes: 0 });
    expect((third as PromiseFulfilledResult<StatementResult[]>).value).toEqual([{ changes: 1, rows: [] }]);
    expect((constraint as PromiseRejectedResult).reason).toMatchObject({
      code: database.kind === 'sqlite' ? 'SQLITE_CONSTRAINT_PRIMARYKEY' : '23505',
    });
    expect((empty as PromiseFulfilledResult<StatementResult[]>).value).toEqual([]);
    expect(await values()).toEqual(['one', 'two', 'four']);
    expect(await values(other)).toEqual(['one', 'two', 'four']);
    // The connection goes on committing.
    await database.transaction([insert(6, 'after')]);
    expect(await values()).toEqual(['one', 'two', 'four', 'after']);
  });
});
