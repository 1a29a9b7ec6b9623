/**
 * npm run build (after tsc): bundles the compiled server (dist/src/main.js and what it requires) into
 * one file, dist/llmop.js, which the entry point (src/start.ts) loads: `npm start`, the tests' server
 * processes and the gateway bench all run it.
 *
 * Why: start-up loads ~1,800 modules, and resolving and reading them (stat, package.json lookups,
 * one read each) took ~250 ms of the ~1.3 s to ready. One file is one read; what the bundle leaves
 * out, below, Node loads from node_modules as before.
 *
 * Left out (`external`), each for a reason:
 * - native addons and the ESM-only node-llama-cpp, which a bundle cannot carry;
 * - packages that are loaded only when a feature is used (Redis, PostgreSQL, OpenTelemetry, the
 *   tokenizer, WebSocket, metrics, class validation): in the bundle their source would be held in
 *   memory from start-up on, whether used or not;
 * - `graphql`: there must be exactly one copy in the process, and sofa-api, loaded from node_modules
 *   by path (src/rest/sofa-operations.ts), requires it from there;
 * - packages whose files the server finds with require.resolve (the GraphiQL and dashboard pages'
 *   scripts, sofa-api);
 * - src/esm-import.ts, the one `import()` (see there), required from beside the bundle;
 * - @apollo/utils.createhash, which reaches node:crypto through `module.require`: a bundled module
 *   has none, and Apollo then hashed every GraphQL document with sha.js, a SHA-256 in JavaScript.
 *
 * Left out entirely: fast-json-stringify (with ajv, ~50 ms to load), which graphql-jit requires for its
 * `customJSONSerializer` option; src/rest/compiled-executor.ts never sets it, and the bundle gets a
 * module that says so if anything ever calls it.
 *
 * esbuild's `__name` helper (keepNames, below) is replaced by one that leaves a name V8 already gave
 * alone (scripts/name-helper.ts): redefining it turned each closure of the request path into a
 * dictionary-mode object.
 *
 * The bundle is kept ASCII: V8 holds a script's source for as long as the script lives, one byte a
 * character only when every character fits in one. esbuild escapes non-ASCII text in strings,
 * templates and names but not in regular expression literals, and six of those (graphql-tools', and
 * graphql-scalars' coordinates) made the 5 MB source two bytes a character: ~5 MiB more resident for
 * good. Those characters are written as \u escapes as each module is read (scripts/escape-regexp-literals.ts),
 * which mean the same in a regular expression.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { escapeRegExpLiterals, nonAsciiPlaces } from './escape-regexp-literals';
import { withCheckingNameHelper } from './name-helper';

const root = path.resolve(__dirname, '../..');

const external = [
  // Native addons, and ESM only.
  'better-sqlite3',
  'node-llama-cpp',
  // One graphql in the process (see above).
  'graphql',
  'graphql/*',
  'sofa-api',
  // Loaded when a feature is used.
  'bullmq',
  'ioredis',
  'pg',
  '@opentelemetry/*',
  'gpt-tokenizer',
  'gpt-tokenizer/*',
  'ws',
  'prom-client',
  'class-validator',
  'libphonenumber-js',
  'validator',
  // Needs a real `module.require` (see above).
  '@apollo/utils.createhash',
  // Files the web pages serve, found with require.resolve.
  'react',
  'react-dom',
  'graphiql',
  'uplot',
];

/** dist/src/esm-import.js stays a file of its own, required from the bundle (dist/llmop.js) as ./src/esm-import.js. */
const esmImportStaysOut: Plugin = {
  name: 'esm-import-stays-out',
  setup(bundler) {
    bundler.onResolve({ filter: /\/esm-import$/ }, () => ({ path: './src/esm-import.js', external: true }));
  },
};

/** fast-json-stringify as a module that refuses to be used (see above). */
const unusedJsonSerializer: Plugin = {
  name: 'unused-json-serializer',
  setup(bundler) {
    bundler.onResolve({ filter: /^fast-json-stringify$/ }, () => ({ path: 'fast-json-stringify', namespace: 'unused' }));
    bundler.onLoad({ filter: /.*/, namespace: 'unused' }, () => ({
      contents:
        "module.exports = () => { throw new Error('fast-json-stringify is not in the bundle: graphql-jit runs without customJSONSerializer'); };",
      loader: 'js',
    }));
  },
};

/** Each module's regular expression literals without non-ASCII characters (see above); other modules load as they are. */
const asciiRegExpLiterals: Plugin = {
  name: 'ascii-regexp-literals',
  setup(bundler) {
    bundler.onLoad({ filter: /\.[cm]?js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const { text, escaped, parseError } = escapeRegExpLiterals(source, args.path);
      // TypeScript refuses some valid sloppy-mode JavaScript (legacy octal literals): such a module is bundled as it is.
      if (parseError)
        return { warnings: [{ text: `left as it is (TypeScript cannot parse it: ${parseError}); the bundle may not be ASCII` }] };
      return escaped > 0 ? { contents: text, loader: 'js' } : undefined;
    });
  },
};

async function main(): Promise<void> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['dist/src/main.js'],
    outfile: 'dist/llmop.js',
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // CommonJS builds first: the packages' own entry points, as Node would load them.
    mainFields: ['main', 'module'],
    external,
    plugins: [esmImportStaysOut, unusedJsonSerializer, asciiRegExpLiterals],
    // Whitespace and syntax only: identifiers stay, so stack traces in the logs still name their functions.
    minifyWhitespace: true,
    minifySyntax: true,
    // esbuild renames a class whose name another module also uses; type-graphql names GraphQL types after
    // classes, and errors report their constructor's name.
    keepNames: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  if (result.errors.length > 0) {
    process.exitCode = 1;
    return;
  }
  const bundlePath = path.join(root, 'dist/llmop.js');
  const mapPath = `${bundlePath}.map`;
  const named = withCheckingNameHelper(readFileSync(bundlePath, 'utf8'), JSON.parse(readFileSync(mapPath, 'utf8')));
  writeFileSync(bundlePath, named.code);
  writeFileSync(mapPath, JSON.stringify(named.map));
  // test/process/bundle.test.ts fails on these too; the bundle still works, it only costs memory.
  for (const where of nonAsciiPlaces(named.code)) {
    process.stderr.write(`bundle: non-ASCII text (V8 will hold the source two bytes a character): ${where}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bundle failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
