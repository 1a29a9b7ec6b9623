import { setFlagsFromString } from 'node:v8';
import { nodeArguments } from './node-arguments';

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
// An operator's own choice of WebAssembly tiers (command line or NODE_OPTIONS) is left alone.

const OPERATOR_CHOICE = /^--(no-)?(liftoff|liftoff-only|wasm-tier-up|wasm-dynamic-tiering)\b/;

if (!nodeArguments.some((argument) => OPERATOR_CHOICE.test(argument.replace(/_/g, '-')))) setFlagsFromString('--liftoff-only');
