import type { Job, Queue, Worker } from 'bullmq';
import { CaseInterrupted, type CaseJob, type CaseProcessor, type CaseQueue } from './case-queue';

export interface BullCaseQueueSettings {
  /** REDIS_URL: a secret (it may hold a password), never logged. */
  readonly redisUrl: string;
  /** Cases in flight in this process. */
  readonly concurrency: number;
  /** How long a case stays claimed by a worker that stopped answering (kill -9) before another takes it. */
  readonly leaseMs: number;
  /** Told of Redis connection errors (throttled by the caller: a dead Redis reports them again and again). */
  readonly onError: (error: unknown) => void;
}

const QUEUE_NAME = 'evaluation-cases';
/** The longest close() waits for BullMQ. */
const CLOSE_TIMEOUT_MS = 5000;

const delay = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** Jobs added per round trip when a run is enqueued (a run has up to 10,000 cases). */
const ENQUEUE_CHUNK = 1000;

/**
 * Runs' cases in BullMQ on Redis, shared by every replica: each replica's worker takes cases, and
 * a case whose worker died (its lock not renewed for `leaseMs`) goes back to the queue for another
 * one. A case's job id is derived from the run and the case, so enqueueing a run again adds only
 * what is missing. BullMQ is loaded only when REDIS_URL is set.
 */
export async function openBullCaseQueue(settings: BullCaseQueueSettings, process: CaseProcessor): Promise<CaseQueue> {
  const { Queue, WaitingError, Worker } = require('bullmq') as typeof import('bullmq');
  // Adding cases fails fast while Redis is down (the run stays queued and the runner's sweep adds it
  // again); the worker waits for Redis as long as it takes (BullMQ requires maxRetriesPerRequest null).
  // Reconnect while open (ioredis's backoff, capped at 2 s); once closing, a lost connection stays
  // closed, or a dead Redis would keep the process alive with reconnect timers after close().
  let closing = false;
  const retryStrategy = (attempt: number): number | null => (closing ? null : Math.min(attempt * 200, 2000));
  const queue: Queue<CaseJob> = new Queue<CaseJob>(QUEUE_NAME, {
    connection: { url: settings.redisUrl, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy },
    prefix: 'llmop',
  });
  const work = async (job: Job<CaseJob>, token?: string): Promise<void> => {
    try {
      await process(job.data);
    } catch (error) {
      if (!(error instanceof CaseInterrupted)) throw error;
      // This replica is stopping (SIGTERM) and aborted the case's cells: back to the queue for another worker,
      // without counting an attempt (completed, the case would be lost and its run never end).
      await job.moveToWait(token);
      throw new WaitingError();
    }
  };
  const worker: Worker<CaseJob> = new Worker<CaseJob>(QUEUE_NAME, work, {
    connection: { url: settings.redisUrl, maxRetriesPerRequest: null, retryStrategy },
    prefix: 'llmop',
    concurrency: settings.concurrency,
    lockDuration: settings.leaseMs,
    stalledInterval: Math.max(250, Math.floor(settings.leaseMs / 2)),
    // A case is redone after each crash of its worker, however many: cells already recorded are skipped.
    maxStalledCount: 1000,
  });
  // Without listeners these are unhandled 'error' events; the connections retry on their own, and
  // start-up does not wait for Redis (the API serves everything else meanwhile).
  queue.on('error', settings.onError);
  worker.on('error', settings.onError);

  return {
    shared: true,
    async enqueueRun(run) {
      for (let first = 0; first < run.caseCount; first += ENQUEUE_CHUNK) {
        const jobs = [];
        for (let itemIndex = first; itemIndex < Math.min(run.caseCount, first + ENQUEUE_CHUNK); itemIndex += 1) {
          jobs.push({
            name: 'case',
            data: { evaluationId: run.id, itemIndex },
            opts: {
              jobId: `${run.id}.${itemIndex}`,
              attempts: 5,
              backoff: { type: 'exponential', delay: 1000 },
              removeOnComplete: true,
              removeOnFail: 1000,
            },
          });
        }
        await queue.addBulk(jobs);
      }
    },
    localRuns: () => [],
    forget() {
      // Waiting cases of an ended run are taken and dropped at once by whichever worker gets them.
    },
    async close() {
      // Bounded: a Redis that went away must not hold up the shutdown (cases in flight go back to the
      // queue). Then the connections are cut, or they would go on reconnecting and keep the process alive.
      closing = true;
      await Promise.race([Promise.allSettled([worker.close(), queue.close()]), delay(CLOSE_TIMEOUT_MS)]);
      // Not awaited: against a dead Redis, BullMQ's close and disconnect never resolve, but the
      // disconnect does stop the reconnecting at once.
      void Promise.allSettled([worker.disconnect(), queue.disconnect()]);
    },
  };
}
