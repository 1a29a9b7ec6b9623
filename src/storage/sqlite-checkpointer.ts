import { Worker } from 'node:worker_threads';

// Runs in a worker thread with its own connection: a checkpoint copies WAL pages into the
// database file and fsyncs it, which can take tens of milliseconds; on the main thread that
// would stall every request. PASSIVE never blocks the writer.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
let failing = false;
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
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
    workerData: { file, intervalMs, driverPath: require.resolve('better-sqlite3') },
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
