// The process's entry point (`npm start` runs dist/src/start.js). Two things must happen before the
// server's code loads, so they happen here, and the server itself is the bundle (scripts/bundle.ts):
// 1. V8's young generation does not grow through start-up, only under load (src/heap-sizing.ts), and
//    WebAssembly (undici's HTTP parser) stays on V8's baseline compiler (src/wasm-tiering.ts);
// 2. compiled code comes from V8's code cache where an earlier start left it (src/compile-cache.ts).
import { startUpIsOver } from './heap-sizing';
import './wasm-tiering';
import path from 'node:path';
import { enableCompileCache } from './compile-cache';
import { projectRoot } from './project-root';

/** COMPILE_CACHE_DIR: where the code cache lives; `off` compiles every module at every start. */
const cacheSetting = process.env.COMPILE_CACHE_DIR ?? path.join(projectRoot, 'node_modules/.cache/llmop/compile');
const compileCache = cacheSetting === 'off' ? undefined : enableCompileCache(path.resolve(cacheSetting));

const { main, exitOnStartFailure } = require('../llmop.js') as typeof import('./main');

main()
  .then((logger) => {
    const report = compileCache?.save();
    if (report) logger.info({ compileCache: report }, 'start-up code cache');
    startUpIsOver();
  })
  .catch(exitOnStartFailure);
