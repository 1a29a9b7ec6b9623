import { setFlagsFromString } from 'node:v8';

// Imported first by main.ts, before any other module loads.
//
// Start-up allocates over 100 MB, most of it short-lived (module sources, schema building). V8 doubles
// its young generation whenever a scavenge finds it busy, so start-up leaves it at its largest (2 x 16
// MiB), and that memory stays resident while the server idles: about 25 MiB of RSS for nothing, and
// start-up copies more surviving objects between the bigger halves. So the young generation keeps its
// initial size until the server listens; from then on it grows under load as V8 grows it by default.
// The growth factor, unlike the young generation's sizes, is read at each growth, so it can change at
// run time.

/** V8's default for --semi-space-growth-factor. */
const V8_DEFAULT_GROWTH_FACTOR = 2;

const FLAG = /^--semi[-_]space[-_]growth[-_]factor\b/;

/** An operator who sets the flag (on the command line or in NODE_OPTIONS) keeps their value throughout. */
const setByOperator = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((argument) => FLAG.test(argument));

let holding = false;
if (!setByOperator) {
  setFlagsFromString('--semi-space-growth-factor=1');
  holding = true;
}

/** The server listens: the young generation may grow again. */
export function endStartupHeapSizing(): void {
  if (!holding) return;
  holding = false;
  setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`);
}
