import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The directory of LLMOP's package.json, found upwards from this module: the same answer whether the
 * code runs from its TypeScript sources (src/), compiled (dist/src/) or bundled (dist/llmop.js). Files
 * the server reads at run time (the OpenAPI contract, the web pages' scripts) are found from here.
 */
export const projectRoot = findProjectRoot(__dirname);

function findProjectRoot(from: string): string {
  for (let directory = from; ; directory = path.dirname(directory)) {
    if (existsSync(path.join(directory, 'package.json'))) return directory;
    if (path.dirname(directory) === directory) throw new Error(`no package.json above ${from}`);
  }
}
