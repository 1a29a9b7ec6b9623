import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { nodeArguments } from './node-arguments';

// V8's code cache for the modules start-up compiles, kept on disk between starts: what Node 22's
// module.enableCompileCache() does, for the Node 20 this runs on. Compiling the server's ~5 MB bundle
// and the packages it leaves out is ~150 ms of each start; a cached module is deserialised instead.
//
// An entry is named after the module's path and the SHA-256 of its source and of the runtime (Node's
// version, its flags): V8 checks only the source's length and its own version and flags, so an edit of
// the same length would otherwise run stale code. One entry a module file: a rebuild replaces it. The
// cache is written once start-up is over (save()), so it holds what start-up compiled, the functions
// compiled lazily included, and none of the request path's. Anything wrong with the cache (a directory
// that cannot be written, a file V8 rejects) costs only the compile it would have saved.

export interface CompileCacheReport {
  /** Modules whose compiled code came from the cache. */
  readonly fromCache: number;
  /** Modules compiled from source (no entry yet, or one V8 rejected). */
  readonly compiled: number;
  /** Entries written by save(). */
  readonly written: number;
}

export interface CompileCache {
  /** Writes the entries that were missing or rejected, then lets go of what it held. */
  save(): CompileCacheReport;
}

interface Compiled {
  readonly script: vm.Script;
  readonly entryFile: string;
  readonly pathKey: string;
  readonly fromCache: boolean;
}

type ModuleInternals = typeof Module & {
  wrap(source: string): string;
  _resolveFilename(request: string, parent: Module, isMain: boolean, options?: { paths?: string[] }): string;
  _resolveLookupPaths(request: string, parent: Module): string[] | null;
  _extensions: NodeJS.RequireExtensions;
  _cache: NodeJS.Dict<NodeJS.Module>;
};
type CompilingModule = Module & { _compile(source: string, filename: string): unknown };

/**
 * The SHA-256 of the parts one after another, shortened. Parts, not one joined string: joining the
 * runtime key to the 5 MB bundle made V8 copy it (its key: 50 -> 24 ms cold, 30 -> 4 ms warm).
 */
function shortHash(...parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex').slice(0, 24);
}

/**
 * An `import(` that can only be a dynamic import: not a method (`.import(`), not part of a longer
 * name, not quoted. Node 20 loses the dynamic-import callback of a script whose code comes from V8's
 * cache, so a module that has one is compiled from source every time (a comment or string that
 * matches only costs its module the cache).
 */
const DYNAMIC_IMPORT = /(?:^|[^\w$.'"`])import\s*\(/m;

const nothingCached: CompileCache = { save: () => ({ fromCache: 0, compiled: 0, written: 0 }) };

/** Starts serving CommonJS modules' compiled code from `directory` (created when missing). */
export function enableCompileCache(directory: string): CompileCache {
  // Before Node 20.12, a vm.Script cannot reach the main context's import() at all.
  const importFromMainContext = (vm.constants as Partial<typeof vm.constants> | undefined)?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  // Node maps stack traces through source maps only for code its own loader compiled.
  if (!importFromMainContext || nodeArguments.includes('--enable-source-maps')) return nothingCached;

  const internals = Module as ModuleInternals;
  const prototype = Module.prototype as CompilingModule;
  const compileFromSource = prototype._compile;
  // V8 rejects code cached by another version or with other flags; the name keeps them apart anyway.
  const runtimeKey = `${process.version}\0${process.arch}\0${nodeArguments.join(' ')}`;
  const compiled: Compiled[] = [];
  let saved = false;

  prototype._compile = function compileWithCache(this: CompilingModule, source: string, filename: string): unknown {
    // A #! line is valid only at the very start of a script, and Node's wrapper goes before it.
    if (saved || !filename.endsWith('.js') || source.startsWith('#!') || DYNAMIC_IMPORT.test(source)) {
      return compileFromSource.call(this, source, filename);
    }
    // One entry per module file, whatever the runtime: a module's entries cannot pile up.
    const pathKey = shortHash(filename);
    const entryFile = path.join(directory, `${pathKey}-${shortHash(runtimeKey, '\0', source)}.bin`);
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(entryFile);
    } catch {
      cachedData = undefined;
    }
    const script = new vm.Script(internals.wrap(source), {
      filename,
      cachedData,
      importModuleDynamically: importFromMainContext,
    });
    compiled.push({ script, entryFile, pathKey, fromCache: cachedData !== undefined && !script.cachedDataRejected });
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...parameters: unknown[]) => unknown;
    return wrapper.call(this.exports, this.exports, requireFor(this, internals), this, filename, path.dirname(filename));
  };

  return {
    save() {
      if (saved) return nothingCached.save();
      saved = true;
      prototype._compile = compileFromSource;
      const fromCache = compiled.filter((module) => module.fromCache).length;
      let written = 0;
      // Each module's entries already there (`<pathKey>-<hash>.bin`), found with one listing.
      const entriesByModule = new Map<string, string[]>();
      try {
        mkdirSync(directory, { recursive: true });
        for (const file of readdirSync(directory)) {
          if (!file.endsWith('.bin')) continue;
          const pathKey = file.slice(0, file.indexOf('-'));
          const files = entriesByModule.get(pathKey);
          if (files) files.push(file);
          else entriesByModule.set(pathKey, [file]);
        }
      } catch {
        // Read-only or missing: every write below fails the same way, and costs nothing but the cache.
      }
      for (const module of compiled) {
        if (module.fromCache) continue;
        try {
          // The module's older entries (an earlier build's, another runtime's) go; another process's
          // half-written `.tmp` files are left to it.
          for (const file of entriesByModule.get(module.pathKey) ?? []) rmSync(path.join(directory, file), { force: true });
          const partial = `${module.entryFile}.${process.pid}.tmp`;
          writeFileSync(partial, module.script.createCachedData());
          renameSync(partial, module.entryFile);
          written += 1;
        } catch {
          // A full disk, or a race with another process saving the same module: the next start compiles it.
        }
      }
      const report = { fromCache, compiled: compiled.length - fromCache, written };
      compiled.length = 0;
      return report;
    },
  };
}

/** The `require` a module's code gets, as Node's own loader builds it. */
function requireFor(module: Module, internals: ModuleInternals): NodeJS.Require {
  const require = ((id: string) => module.require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: { paths?: string[] }) =>
    internals._resolveFilename(request, module, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => internals._resolveLookupPaths(request, module);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = internals._extensions;
  require.cache = internals._cache;
  return require;
}
