import { decode, encode } from '@jridgewell/sourcemap-codec';

/**
 * esbuild's `keepNames` (scripts/bundle.ts) calls `__name(fn, "fn")` on every function and class it
 * names, each time one is created, and its helper redefines `name` with `Object.defineProperty`. On a
 * closure that V8 has just created, redefining a property of the function's shared hidden class turns
 * the function into a dictionary-mode object: a gateway generate made ~22 of them (inner arrow functions
 * of the request path, ours and the packages'), each a trip through the runtime, and code that called
 * them met many hidden classes. V8 has already named almost all of them the same (identifiers are not
 * minified: only a class esbuild renamed for a clash gets a different one), so the helper only
 * redefines `name` when it differs, which leaves `name` exactly as before.
 */
const esbuildHelper = 'var __name=(target,value)=>__defProp(target,"name",{value,configurable:!0});';
const checkingHelper = 'var __name=(target,value)=>target.name===value?target:__defProp(target,"name",{value,configurable:!0});';

export interface SourceMapJson {
  mappings: string;
  [key: string]: unknown;
}

/** The bundle with the checking helper, and its source map with the columns after it moved along. */
export function withCheckingNameHelper(code: string, map: SourceMapJson): { code: string; map: SourceMapJson } {
  const at = code.indexOf(esbuildHelper);
  if (at < 0 || code.indexOf(esbuildHelper, at + 1) >= 0) {
    throw new Error("esbuild's __name helper is not in the bundle exactly once: update scripts/name-helper.ts for this esbuild");
  }
  const line = code.slice(0, at).split('\n').length - 1;
  const column = at - (code.lastIndexOf('\n', at - 1) + 1);
  const shift = checkingHelper.length - esbuildHelper.length;
  const lines = decode(map.mappings);
  lines[line] = (lines[line] ?? []).map((segment) => {
    if (segment[0] < column + esbuildHelper.length) return segment;
    const moved = [...segment] as typeof segment;
    moved[0] += shift;
    return moved;
  });
  return {
    code: code.slice(0, at) + checkingHelper + code.slice(at + esbuildHelper.length),
    map: { ...map, mappings: encode(lines) },
  };
}
