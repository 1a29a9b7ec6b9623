/**
 * Preloaded into the gateway by the bench's stream phase (`node --expose-gc --require
 * dist/scripts/bench/memory-probe.js dist/src/start.js`), so that its heap can be read without a line
 * of src/ knowing about the bench. On SIGUSR2 it runs a full garbage collection (when --expose-gc is
 * on) and appends one JSON line, `{"rss","heapUsed","heapTotal","external","arrayBuffers"}` in bytes,
 * to the file named by BENCH_MEMORY_FILE. Without that variable it does nothing.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.BENCH_MEMORY_FILE;
if (file) {
  const collect = (globalThis as { gc?: () => void }).gc;
  process.on('SIGUSR2', () => {
    collect?.();
    const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
    appendFileSync(file, `${JSON.stringify({ rss, heapUsed, heapTotal, external, arrayBuffers, collected: collect !== undefined })}\n`);
  });
}
