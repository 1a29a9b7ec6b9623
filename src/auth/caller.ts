import type { IncomingMessage } from 'node:http';
import type { ApiKeyRegistry, KeyLimits } from './api-keys';

/** Who is calling: an API key by name, or (with auth off) a client address. */
export interface Caller {
  /** Identifies the caller for rate limits; never the key itself. */
  readonly id: string;
  readonly keyName?: string;
  readonly limits?: KeyLimits;
}

export type Authentication = { ok: true; caller: Caller } | { ok: false; reason: 'missing' | 'invalid' };

const bearer = /^Bearer\s+(\S+)\s*$/i;

/** Reads `Authorization: Bearer <key>`; with no keys configured every caller is let in, known by address. */
export function authenticate(request: IncomingMessage, keys: ApiKeyRegistry): Authentication {
  if (!keys.enabled) return { ok: true, caller: { id: `address:${request.socket.remoteAddress ?? 'unknown'}` } };
  const header = request.headers.authorization;
  if (!header) return { ok: false, reason: 'missing' };
  const presented = bearer.exec(header)?.[1];
  const key = presented ? keys.find(presented) : undefined;
  if (!key) return { ok: false, reason: 'invalid' };
  return { ok: true, caller: { id: `key:${key.name}`, keyName: key.name, limits: key.limits } };
}
