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

  /** `count` finished generations spread over January 2025, inserted in one transaction by a connection of the test's own. */
  function fillLedger(count: number): void {
    const filler = new Sqlite(file);
    try {
      const insert = filler.prepare(
        `insert into generations (id, request_id, caller, source, model_id, provider, upstream_model, status, max_tokens, temperature,
           top_p, input_tokens, output_tokens, cost_units, latency_ms, attempts, created_at, finished_at)
         values (?, ?, ?, 'generate', ?, 'vllm', 'up', ?, 16, 0, 1, 10, 20, 30, ?, '[]', ?, ?)`,
      );
      const start = Date.UTC(2025, 0, 1);
      filler.transaction(() => {
        for (let index = 0; index < count; index++) {
          const createdAt = start + index * 7;
          insert.run(
            `g${index}`,
            `r${index}`,
            `caller-${index % 50}`,
            `model-${index % 4}`,
            index % 10 === 0 ? 'failed' : 'succeeded',
            index % 997,
            createdAt,
            createdAt + 5,
          );
        }
      })();
    } finally {
      filler.close();
    }
  }

  it('runs reports on their own thread: a timer set after a long usage series starts fires before the series answers', async () => {
    fillLedger(100_000);
    const ledger = new LedgerRepository(database, { recordContent: true });
    const query = {
      since: new Date(Date.UTC(2025, 0, 1)),
      until: new Date(Date.UTC(2025, 1, 1)),
      bucketMs: 3_600_000,
      groupBy: 'caller' as const,
      maxLines: 50,
    };
    await ledger.usageSeries(query); // the reader thread is made by the first report
    let timerFired = false;
    let answeredAfterTimer: boolean | undefined;
    const series = ledger.usageSeries(query).then((result) => {
      answeredAfterTimer = timerFired;
      return result;
    });
    setTimeout(() => {
      timerFired = true;
    }, 0);
    const result = await series;
    // On the main thread the whole scan would run before any timer could.
    expect(answeredAfterTimer).toBe(true);
    expect(result.lines).toHaveLength(50);
    expect(result.lines.reduce((sum, line) => sum + line.points.reduce((total, point) => total + point.requests, 0), 0)).toBe(100_000);

    // The same report from the main connection agrees, row for row.
    const usage = await ledger.usage({ since: query.since, until: query.until }, 'model');
    const onMainThread = await sql<{ model_id: string; requests: number }>`
      select model_id, count(*) as requests from generations group by model_id order by model_id`.execute(database.db);
    expect(usage.rows.map((row) => ({ model_id: row.group, requests: row.requests }))).toEqual(onMainThread.rows);
    expect(usage.totals.failed).toBe(10_000);
  });

  it('sees a generation as soon as its commit resolves, and fails a report cleanly once closed', async () => {
    const ledger = new LedgerRepository(database, { recordContent: true });
    const since = new Date(Date.UTC(2025, 0, 1));
    expect((await ledger.usage({ since }, 'model')).totals.requests).toBe(0);
    fillLedger(3);
    expect((await ledger.usage({ since }, 'model')).totals.requests).toBe(3);
    await expect(database.reports.selectFrom('generations').select('id').execute()).resolves.toHaveLength(3);
    // Reads only: a write handed to the report connection is refused, not run.
    await expect(sql`delete from generations`.execute(database.reports)).rejects.toThrow(/return rows only|readonly|query_only/i);
    expect((await ledger.usage({ since }, 'model')).totals.requests).toBe(3);
    await database.close();
    await expect(ledger.usage({ since }, 'model')).rejects.toThrow();
    database = await openDatabase({ sqliteFile: file }); // for afterEach
  });
});
