import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import path from 'node:path';

const contentTypes: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * Serves a fixed set of files under `prefix` (`/graphiql/react.production.min.js`), each read once and
 * kept in memory; resolves false for any other path, so only these names are ever answered.
 */
export function createStaticFiles<Name extends string>(prefix: string, files: Readonly<Record<Name, string>>) {
  const cache = new Map<Name, Buffer>();
  return async (response: ServerResponse, pathname: string): Promise<boolean> => {
    if (!pathname.startsWith(prefix)) return false;
    const name = pathname.slice(prefix.length);
    if (!Object.hasOwn(files, name)) return false;
    const file = name as Name;
    let body = cache.get(file);
    if (!body) {
      body = await readFile(files[file]);
      cache.set(file, body);
    }
    response.statusCode = 200;
    response.setHeader('content-type', contentTypes[path.extname(file)] ?? 'application/octet-stream');
    response.setHeader('cache-control', 'public, max-age=3600');
    response.setHeader('x-content-type-options', 'nosniff');
    response.end(body);
    return true;
  };
}
