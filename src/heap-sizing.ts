import { setFlagsFromString } from 'node:v8';
import { operatorGave } from './node-arguments';

// Imported first by src/start.ts, before the server's code loads.
//
// V8 doubles its young generation whenever a scavenge finds it busy (--semi-space-growth-factor=2), so
// start-up, which allocates over 100 MB in about a second (module sources, schema building), leaves it
// at its largest (2 x 16 MiB), and so does the first burst of work after it (model discovery): about 30
// MiB that stay resident while the server idles, and more survivors copied between the bigger halves
// during start-up. With a factor of 1 it keeps its initial size through start-up and grows only when
// sustained load needs it (test/process/heap-sizing.test.ts: 2 MiB at start, 32 MiB under load; REST
// generate throughput measured the same either way). The factor, unlike the sizes, is read at each
// growth, so it can be set here at run time. An operator's own value (on the command line) is left
// alone, for this and for the next setting.
//
// The old generation: after each full collection V8 lets the heap grow to a multiple of what survived
// before it collects again, a multiple it picks from the collector's speed, up to 4. A gateway's
// survivors are small (~45-50 MiB under load) and its garbage is promoted steadily, so under load the
// heap climbed to ~200 MiB between full collections (RSS ~290-310 MiB after 40 s of generate load, floor
// 300). A fixed factor of 2 (Go's default, GOGC=100) keeps the peak at ~95 MiB (RSS ~225 MiB): a full
// collection every ~3 s instead of ~25 s, each ~10 ms plus its incremental steps, under 1% of the CPU.
// The factor is read at each collection, so it too can be set here.

if (!operatorGave(/^--semi-space-growth-factor\b/)) setFlagsFromString('--semi-space-growth-factor=1');
if (!operatorGave(/^--heap-growing-percent\b/)) setFlagsFromString('--heap-growing-percent=100');
