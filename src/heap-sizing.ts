import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { operatorGave } from './node-arguments';

// Imported first by src/start.ts, before the server's code loads.
//
// V8 doubles its young generation whenever a scavenge finds it busy (--semi-space-growth-factor=2), so
// start-up, which allocates over 100 MB in about a second (module sources, schema building), leaves it
// at its largest (2 x 16 MiB), and so does the first burst of work after it (model discovery): about 30
// MiB that stay resident while the server idles, and more survivors copied between the bigger halves
// during start-up. So the factor is 1 (no growth) through start-up and after it, and V8's own 2 once the
// event loop has been busy (a quarter of the time or more) for two seconds in a row: an idle server
// keeps the initial 2 MiB (model discovery's first calls right after start-up grew it by ~10 MiB of
// RSS), and load grows it (test/process/heap-sizing.test.ts). Load needs it grown: at 2 MiB, REST
// generate served 23% fewer requests/s at 10 connections and 14% fewer at one (alternating slices),
// every in-flight request's objects being copied and promoted by scavenges a few requests apart.
//
// The factor is read at each growth, so it can be set at run time; but V8 also raises it to at least 2
// whenever it configures an isolate's heap (Heap::ConfigureHeap), which each worker thread's start does,
// for the whole process: a worker started before load has it set back to 1 once it runs. Before
// this was explicit, the factor stayed 1 until the ledger's first write started its checkpoint thread:
// never with LEDGER=off or PostgreSQL, which then ran on a 2 MiB young generation. An operator's own
// value (on the command line) is left alone, for this and the next setting (a value under 2 is raised
// by V8 as above).
const growthFactorIsOurs = !operatorGave(/^--semi-space-growth-factor\b/);
let loadSeen = false;
if (growthFactorIsOurs) {
  setFlagsFromString('--semi-space-growth-factor=1');
  // V8 configures the worker's heap in the worker's thread, some time before this thread hears that it is
  // online: set again then, first among the listeners. A scavenge in between may still grow it once.
  process.on('worker', (worker) =>
    worker.prependOnceListener('online', () => {
      if (!loadSeen) setFlagsFromString('--semi-space-growth-factor=1');
    }),
  );
}

const LOAD_CHECK_MS = 1000;
const BUSY_SHARE = 0.25;
const BUSY_SECONDS = 2;
let watching = false;

/**
 * Start-up is over (src/start.ts calls this once its own work after listening is done): the young
 * generation is V8's to grow once the event loop has been busy for two seconds in a row. Two, so that
 * the work right after start-up (model discovery's first calls) or one slow second on a crowded host
 * does not count as load.
 */
export function startUpIsOver(): void {
  if (!growthFactorIsOurs || watching) return;
  watching = true;
  let last = performance.eventLoopUtilization();
  let busySeconds = 0;
  const watch = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    busySeconds = busy >= BUSY_SHARE ? busySeconds + 1 : 0;
    if (busySeconds < BUSY_SECONDS) return;
    clearInterval(watch);
    loadSeen = true;
    setFlagsFromString('--semi-space-growth-factor=2');
  }, LOAD_CHECK_MS);
  watch.unref();
}

// The old generation: after each full collection V8 lets the heap grow to a multiple of what survived
// before it collects again, a multiple it picks from the collector's speed, up to 4. A gateway's
// survivors are small (~45-50 MiB under load) and its garbage is promoted steadily, so under load the
// heap climbed to ~200 MiB between full collections (RSS ~290-310 MiB after 40 s of generate load, floor
// 300). A fixed factor of 2 (Go's default, GOGC=100) keeps the peak at ~95 MiB (RSS ~225 MiB): a full
// collection every ~3 s instead of ~25 s, each ~10 ms plus its incremental steps, under 1% of the CPU.
// The factor is read at each collection, so it too can be set here.

if (!operatorGave(/^--heap-growing-percent\b/)) setFlagsFromString('--heap-growing-percent=100');
