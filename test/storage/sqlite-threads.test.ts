import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { CompiledQuery, sql } from 'kysely';
import { openDatabase, type LedgerDatabase } from '../../src/storage/database';
import { newGenerationId } from '../../src/storage/generation-id';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import { openSqliteWriter, SqliteWriteError } from '../../src/storage/sqlite-writer';
import { poll } from '../support/polling';

/*
 * The embedded store keeps fsync off the event loop: commits are WAL appends on the writing
 * connection, and WAL checkpoints (which fsync) run in a checkpoint thread; the reading connection never checkpoints.
 */

describe('the SQLite ledger threads', () => {
  let directory: string;
  let file: string;
  let database: LedgerDatabase;

  beforeEach(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-sqlite-threads-'));
    file = path.join(directory, 'ledger.db');
    database = await openDatabase({ sqliteFile: file, checkpointIntervalMs: 50 });
  });
  afterEach(async () => {
    await database.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** Rows in the database file itself, without its WAL: what checkpoints have moved there. */
  function rowsInDatabaseFile(): number {
    const copy = path.join(directory, `copy-${Math.random().toString(36).slice(2)}.db`);
    copyFileSync(file, copy);
    const reader = new Sqlite(copy, { readonly: true });
    try {
      return (reader.prepare('select count(*) as count from generations').get() as { count: number }).count;
    } catch {
      return -1; // copied in the middle of a checkpoint: try again
    } finally {
      reader.close();
    }
  }

  it('checkpoints committed generations into the database file from its own thread, while the main connection never checkpoints', async () => {
    const autocheckpoint = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(database.db);
    expect(autocheckpoint.rows).toEqual([{ wal_autocheckpoint: 0 }]);
    const ledger = new LedgerRepository(database, { recordContent: true });
    await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const createdAt = new Date(Date.UTC(2025, 0, 1, 0, 0, index));
        const id = newGenerationId(createdAt);
        await ledger.start({
          id,
          requestId: `req-${index}`,
          caller: 'alice',
          team: null,
          source: 'batch',
          modelId: 'tiny-chat',
          provider: 'vllm',
          upstreamModel: 'tiny-chat-v1',
          prompt: 'hi',
          promptRef: null,
          evaluationId: null,
          parameters: { maxTokens: 10, temperature: 0, topP: 1 },
          createdAt,
        });
      }),
    );
    expect(
      await poll(
        async () => rowsInDatabaseFile(),
        (count) => count === 40,
      ),
    ).toBe(40);
  });

  it('keeps the WAL bounded under a steady stream of commits (PASSIVE checkpoints alone never catch up)', async () => {
    const ledger = new LedgerRepository(database, { recordContent: true });
    const wal = `${file}-wal`;
    const walBytes = (): number => (existsSync(wal) ? statSync(wal).size : 0);
    let largest = 0;
    let written = 0;
    const total = 12_000;
    // 20 writers without a pause: a commit is always due while a checkpoint runs.
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (written < total) {
          const index = written++;
          const createdAt = new Date(Date.UTC(2025, 0, 1) + index);
          const id = newGenerationId(createdAt);
          await ledger.start({
            id,
            requestId: `req-${index}`,
            caller: `caller-${index % 13}`,
            team: index % 2 ? 'red' : null,
            source: 'generate',
            modelId: `model-${index % 5}`,
            provider: 'vllm',
            upstreamModel: 'm',
            prompt: 'a prompt of a few words',
            promptRef: null,
            evaluationId: null,
            parameters: { maxTokens: 16, temperature: 0.7, topP: 1 },
            createdAt,
          });
          await ledger.finish(id, {
            status: 'succeeded',
            error: null,
            finishReason: 'stop',
            text: 'an answer of a few words',
            inputTokens: 6,
            outputTokens: 6,
            costUsd: 0.000001,
            latencyMs: 1,
            attempts: [],
          });
          if (index % 250 === 0) largest = Math.max(largest, walBytes());
        }
      }),
    );
    largest = Math.max(largest, walBytes());
    // Without the RESTART past 4096 frames this WAL reached ~130 MiB; with it, it stays near 16 MiB
    // plus what one checkpoint interval (50 ms here) writes.
    expect(largest).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);

  it('rejects a write that SQLite refuses with its SQLite error code, and goes on writing', async () => {
    const refused = database.write(CompiledQuery.raw('insert into generations (id) values (?)', ['gen_incomplete']));
    await expect(refused).rejects.toBeInstanceOf(SqliteWriteError);
    await expect(refused).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_NOTNULL' });
    const removed = await database.write(CompiledQuery.raw('delete from generations where id = ?', ['gen_none']));
    expect(removed).toBe(0);
    expect(await database.ping()).toBe(true);
  });

  it('queues writes while another connection holds the write lock, without blocking the event loop, and commits them in order once it is free', async () => {
    const holder = new Sqlite(file);
    holder.exec('begin immediate');
    const first = database.write(CompiledQuery.raw("insert into budgets values ('b1', 'global', null, null, 1, 'day', 0, 0)", []));
    const second = database.write(CompiledQuery.raw("update budgets set limit_units = 2 where id = 'b1'", []));
    let settled = false;
    void Promise.allSettled([first, second]).then(() => (settled = true));
    // The loop goes on turning while the writes wait for the lock.
    let turns = 0;
    await new Promise<void>((resolve) => {
      const turn = () => (++turns < 20 ? setTimeout(turn, 1) : resolve());
      turn();
    });
    expect(settled).toBe(false);
    holder.exec('commit');
    holder.close();
    expect(await first).toBe(1);
    expect(await second).toBe(1); // after the insert: the queue kept their order
    const rows = await sql<{ limit_units: number }>`select limit_units from budgets where id = 'b1'`.execute(database.db);
    expect(rows.rows).toEqual([{ limit_units: 2 }]);
  });

  it('fails a write with SQLITE_BUSY when the write lock stays taken past the busy timeout, and goes on writing after', async () => {
    const writer = openSqliteWriter(file, { busyTimeoutMs: 30, busyRetryMs: 5 });
    const holder = new Sqlite(file);
    try {
      holder.exec('begin immediate');
      const refused = writer.execute('delete from budgets', []);
      await expect(refused).rejects.toBeInstanceOf(SqliteWriteError);
      await expect(refused).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
      holder.exec('rollback');
      expect(await writer.execute('delete from budgets', [])).toBe(0);
    } finally {
      holder.close();
      await writer.stop();
    }
  });

  it('refuses writes and answers ping false once closed', async () => {
    const closing = openDatabase({ sqliteFile: path.join(directory, 'other.db') });
    const other = await closing;
    await other.close();
    expect(await other.ping()).toBe(false);
    await expect(other.write(CompiledQuery.raw('delete from generations', []))).rejects.toThrow(/stopped/);
  });
});
