/**
 * `import()` of an ES module (node-llama-cpp is one), from a module of its own that the bundle leaves
 * out (scripts/bundle.ts) and the start-up code cache leaves alone (src/compile-cache.ts): Node 20
 * loses a script's dynamic-import callback when its code comes from V8's cache, so an `import()` in
 * cached code fails ("A dynamic import callback was not specified").
 */
export function importEsm<Module>(specifier: string): Promise<Module> {
  return import(specifier) as Promise<Module>;
}
