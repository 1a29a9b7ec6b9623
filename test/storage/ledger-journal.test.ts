import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase, type LedgerDatabase } from '../../src/storage/database';
import { newGenerationId } from '../../src/storage/generation-id';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import type { GenerationOutcome, GenerationStart } from '../../src/storage/ledger-types';
import { readRowJournal, RowJournal } from '../../src/storage/row-journal';

/*
 * The SQLite ledger's journal (src/storage/row-journal.ts): what start-up replays after a kill, and
 * what happens while its batches cannot reach the database. The shared ledger suite runs every
 * other promise of the ledger through the journal too ("the ledger on SQLite with its journal").
 */

const createdAt = new Date(Date.UTC(2025, 4, 1, 9, 0, 0));

function generation(prompt: string): GenerationStart {
  return {
    id: newGenerationId(createdAt),
    requestId: `req-${prompt}`,
    caller: 'alice',
    team: null,
    source: 'generate',
    modelId: 'tiny-chat',
    provider: 'vllm',
    upstreamModel: 'tiny-chat-v1',
    prompt,
    promptRef: null,
    evaluationId: null,
    parameters: { maxTokens: 16, temperature: 0, topP: 1 },
    createdAt,
  };
}

const succeeded: GenerationOutcome = {
  status: 'succeeded',
  error: null,
  finishReason: 'stop',
  text: 'done',
  inputTokens: 2,
  outputTokens: 1,
  costUsd: 0,
  latencyMs: 5,
  attempts: [],
};

describe('the SQLite ledger journal', () => {
  let directory: string;
  let sqliteFile: string;
  let database: LedgerDatabase;
  const opened: Array<{ ledger: LedgerRepository; journal: RowJournal }> = [];

  /** A ledger as the server opens it on SQLite, whose batches wait for a read or `drained()`. */
  const openJournaled = (): { ledger: LedgerRepository; journal: RowJournal } => {
    const journal = new RowJournal(sqliteFile);
    const ledger = new LedgerRepository(database, { recordContent: true, journal, journalFlushDelayMs: 3_600_000 });
    opened.push({ ledger, journal });
    return { ledger, journal };
  };
  /** On another connection: what is committed, without the barrier that would commit the journaled rows first. */
  const onOtherConnection = async <T>(work: (other: LedgerDatabase) => Promise<T>): Promise<T> => {
    const other = await openDatabase({ sqliteFile });
    try {
      return await work(other);
    } finally {
      await other.close();
    }
  };
  const statusesOnDisk = (): Promise<Record<string, string>> =>
    onOtherConnection(async (other) => {
      const rows = await other.db.selectFrom('generations').select(['prompt', 'status']).execute();
      return Object.fromEntries(rows.map((row) => [row.prompt, row.status]));
    });

  beforeEach(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-journal-'));
    sqliteFile = path.join(directory, 'llmop.db');
    database = await openDatabase({ sqliteFile });
  });
  afterEach(async () => {
    for (const { ledger, journal } of opened.splice(0)) {
      await ledger.close().catch(() => undefined);
      journal.close();
    }
    await database.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('replays what a killed process journaled: starts stay in progress, finishes win, a torn last line is skipped', async () => {
    // Committed before the kill: a finished row whose start is still a line of the journal.
    const { ledger: before } = openJournaled();
    const committed = generation('committed before the kill');
    await before.start(committed);
    await before.drained();
    await before.finish(committed.id, succeeded);
    await before.drained();

    // Journaled only: the process dies before their batch.
    const { ledger: killed } = openJournaled();
    const inFlight = generation('in flight at the kill');
    const answered = generation('answered, then killed');
    await killed.start(inFlight);
    await killed.start(answered);
    await killed.finish(answered.id, succeeded);
    const [first] = readRowJournal<{ id: string }>(sqliteFile);
    expect(first?.id).toBe(inFlight.id);
    // A stale start of the committed row (a segment written again after a failed batch), and a write cut short.
    appendFileSync(
      `${sqliteFile}-pending-0.jsonl`,
      `${JSON.stringify({ ...first, id: committed.id, prompt: 'committed before the kill' })}\n{"id":"gen_cut`,
    );
    expect(await statusesOnDisk()).toEqual({ 'committed before the kill': 'succeeded' });

    const { ledger: restarted } = openJournaled();
    expect(await restarted.replayJournal()).toBe(3);
    expect(readRowJournal(sqliteFile)).toEqual([]);
    expect(await statusesOnDisk()).toEqual({
      'committed before the kill': 'succeeded',
      'in flight at the kill': 'in_progress',
      'answered, then killed': 'succeeded',
    });
    expect(await restarted.closeInterrupted(new Date(createdAt.getTime() + 1))).toBe(1);
    expect((await restarted.get(inFlight.id))?.status).toBe('cancelled');
    expect((await restarted.get(answered.id))?.text).toBe('done');
  });

  it('refuses new generations while a batch cannot be committed, and commits the journaled rows once it can', async () => {
    const { ledger } = openJournaled();
    const accepted = generation('accepted before the failure');
    await ledger.start(accepted);
    // The database refuses inserts (as a full disk or a broken file would).
    await onOtherConnection((other) =>
      other.write(
        sql`create trigger refuse before insert on generations begin select raise(abort, 'the disk is full'); end`.compile(other.db),
      ),
    );
    await expect(ledger.drained()).rejects.toThrow('the disk is full');
    await expect(ledger.start(generation('refused meanwhile'))).rejects.toThrow('the disk is full');
    await expect(ledger.finish(accepted.id, succeeded)).rejects.toThrow('the disk is full');
    // Still durable: the next start would replay it.
    expect(readRowJournal<{ id: string }>(sqliteFile).map((row) => row.id)).toContain(accepted.id);

    await onOtherConnection((other) => other.write(sql`drop trigger refuse`.compile(other.db)));
    await ledger.drained();
    expect(await statusesOnDisk()).toEqual({ 'accepted before the failure': 'in_progress' });
    const next = generation('accepted after');
    await ledger.start(next);
    await ledger.finish(next.id, succeeded);
    expect((await ledger.get(next.id))?.status).toBe('succeeded');
    expect(readRowJournal(sqliteFile)).toEqual([]);
  });
});
