import { Worker } from 'node:worker_threads';

// Runs in a worker thread with its own connection: a checkpoint copies WAL pages into the
// database file and fsyncs it, which can take tens of milliseconds; on the main thread that
// would stall every request. PASSIVE never blocks the writer, but under a steady stream of
// commits it never catches up with the last frame either, and SQLite only starts the WAL over
// when a writer finds it fully checkpointed: the WAL grew without bound (600 MiB for a 21 MiB
// database in 30 s of load). So once it holds more than maxWalFrames, a RESTART checkpoint right
// after the PASSIVE one copies the few frames committed meanwhile, holding the write lock for
// that moment only (a write that finds it busy waits in the writer's queue, not on the event loop), and the next commit starts the WAL over.
// (TRUNCATE also empties the file, but made p99 commit latency 10x worse.) The writer
// connection's journal_size_limit trims the file when it starts over.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
let failing = false;
const checkpoint = () => {
  try {
    const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)');
    if (log > workerData.maxWalFrames) db.pragma('wal_checkpoint(RESTART)');
    failing = false;
  } catch (error) {
    // Reported once per run of failures, not every interval.
    if (!failing) parentPort.postMessage({ error: String((error && error.message) || error) });
    failing = true;
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/** About 16 MiB of 4 KiB pages: past it the WAL starts over (SQLite's own autocheckpoint starts at 1000 frames). */
const MAX_WAL_FRAMES = 4096;

export interface SqliteCheckpointer {
  stop(): Promise<void>;
}

/**
 * Checkpoints the WAL of `file` every `intervalMs` from a worker thread, so that the connection
 * on the main thread can run with `wal_autocheckpoint = 0` and no commit ever waits for one.
 */
export function startSqliteCheckpointer(file: string, intervalMs: number, onError: (message: string) => void): SqliteCheckpointer {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { file, intervalMs, maxWalFrames: MAX_WAL_FRAMES, driverPath: require.resolve('better-sqlite3') },
  });
  worker.unref(); // never what keeps the process alive
  worker.on('message', (message: { error?: string }) => {
    if (message.error) onError(message.error);
  });
  worker.on('error', (error) => onError(error.message));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.ref(); // an unref'd worker would let the process exit before it has closed its connection
      worker.postMessage('stop');
      await exited;
    },
  };
}
