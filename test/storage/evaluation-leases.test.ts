import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type LedgerDatabase, openDatabase } from '../../src/storage/database';
import { EvaluationRepository } from '../../src/storage/evaluation-repository';
import type { NewEvaluation } from '../../src/storage/evaluation-types';

/*
 * Claims on evaluation runs (replicas sharing a database without Redis): a run created with its
 * process's lease cannot be taken by another replica's sweep before that process queues it; a run
 * created without one, or whose lease ran out, can.
 */

const LEASE_MS = 2000;

describe('evaluation run leases (SQLite)', () => {
  let directory: string;
  let database: LedgerDatabase;
  let clock: Date;
  let evaluations: EvaluationRepository;

  const newRun = (lease?: NewEvaluation['lease']): NewEvaluation => ({
    name: null,
    datasetId: 'ds_1',
    prompts: [{ name: 'welcome', version: 1 }],
    modelIds: ['tiny-chat'],
    scorers: [],
    parameters: {},
    owner: { name: 'alice', team: null, role: 'admin' },
    caseCount: 3,
    ...(lease ? { lease } : {}),
  });

  beforeAll(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-leases-'));
    database = await openDatabase({ sqliteFile: path.join(directory, 'ledger.db') });
  });
  beforeEach(() => {
    clock = new Date('2026-01-05T10:00:00.000Z');
    evaluations = new EvaluationRepository(database, () => clock);
  });
  afterAll(async () => {
    await database?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("a run created with its process's lease is not claimed by another replica until the lease runs out", async () => {
    const run = await evaluations.create(newRun({ owner: 'runner_a', leaseMs: LEASE_MS }));
    expect(await evaluations.claim('runner_b', LEASE_MS, { ids: [run.id] })).toEqual([]);
    // Its own process claims it (enqueue) and keeps it by renewing.
    expect(await evaluations.claim('runner_a', LEASE_MS, { ids: [run.id] })).toEqual([run.id]);
    clock = new Date(clock.getTime() + LEASE_MS - 1);
    expect(await evaluations.renew('runner_a', [run.id], LEASE_MS)).toEqual([run.id]);
    clock = new Date(clock.getTime() + LEASE_MS - 1);
    expect(await evaluations.claim('runner_b', LEASE_MS, { ids: [run.id] })).toEqual([]);
    // A process that stopped renewing loses it.
    clock = new Date(clock.getTime() + 2);
    expect(await evaluations.claim('runner_b', LEASE_MS, { ids: [run.id] })).toEqual([run.id]);
    expect(await evaluations.renew('runner_a', [run.id], LEASE_MS)).toEqual([]);
  });

  it('a run created without a lease (BullMQ shares its cases) is free for the first claim', async () => {
    const run = await evaluations.create(newRun());
    expect(await evaluations.claim('runner_b', LEASE_MS, { ids: [run.id] })).toEqual([run.id]);
  });
});
