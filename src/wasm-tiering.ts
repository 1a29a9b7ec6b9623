import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { operatorGave } from './node-arguments';

// Imported by src/start.ts, before the server's code loads.
//
// The only WebAssembly the gateway runs is llhttp, undici's HTTP parser, on every upstream answer.
// V8 compiles it with Liftoff (its baseline compiler) and, once its functions are hot, again with
// TurboFan on a background thread. That one compilation leaves ~35 MiB in a glibc arena that is never
// given back: an idle gateway that has made its first upstream calls (model discovery) held 143-155 MiB
// instead of 107-109 (scripts/bench-gateway.ts, idle RSS; floor 120 MiB). Parsing a response's framing
// is a small share of a generation's CPU (~0.3% in `perf`), and REST generate throughput measured the
// same with Liftoff alone within the bench machine's noise. So TurboFan is kept off for WebAssembly.
// --no-wasm-tier-up alone does not do it (dynamic tiering still tiered up in one start of three).
//
// Only where Liftoff compiles everything llhttp needs (its SIMD build included): on x64 with SSE4.1 and
// on arm64. Elsewhere V8 falls back to TurboFan for what Liftoff cannot compile, which --liftoff-only
// would turn into a crash. An operator's own choice of tiers on the command line is left alone.

const OPERATOR_CHOICE = /^--(no-?)?(liftoff|liftoff-only|wasm-tier-up|wasm-dynamic-tiering)\b/;

/** Whether Liftoff covers all of llhttp here (SIMD on x64 needs SSE4.1; where the CPU cannot be read, it is not assumed). */
function liftoffCoversSimd(): boolean {
  if (process.arch === 'arm64') return true;
  if (process.arch !== 'x64') return false;
  try {
    return /^flags\s*:.*\bsse4_1\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

if (!operatorGave(OPERATOR_CHOICE) && liftoffCoversSimd()) {
  setFlagsFromString('--liftoff-only');
}
