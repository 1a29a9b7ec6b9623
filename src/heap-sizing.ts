import { setFlagsFromString } from 'node:v8';
import { nodeArguments } from './node-arguments';

// Imported first by src/start.ts, before the server's code loads.
//
// V8 doubles its young generation whenever a scavenge finds it busy (--semi-space-growth-factor=2), so
// start-up, which allocates over 100 MB in about a second (module sources, schema building), leaves it
// at its largest (2 x 16 MiB), and so does the first burst of work after it (model discovery): about 30
// MiB that stay resident while the server idles, and more survivors copied between the bigger halves
// during start-up. With a factor of 1 it keeps its initial size through start-up and grows only when
// sustained load needs it (test/process/heap-sizing.test.ts: 2 MiB at start, 32 MiB under load; REST
// generate throughput measured the same either way). The factor, unlike the sizes, is read at each
// growth, so it can be set here at run time. An operator's own value (command line or NODE_OPTIONS)
// is left alone.

const FLAG = /^--semi[-_]space[-_]growth[-_]factor\b/;

if (!nodeArguments.some((argument) => FLAG.test(argument))) setFlagsFromString('--semi-space-growth-factor=1');
