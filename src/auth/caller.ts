import type { IncomingMessage } from 'node:http';
import type { Caller } from '../pipeline/caller';
import type { ApiKeyRegistry } from './api-keys';

export type Authentication = { ok: true; caller: Caller } | { ok: false; reason: 'missing' | 'invalid' };

/** The caller's name in records when authentication is off. */
export const ANONYMOUS = 'anonymous';

const bearer = /^Bearer\s+(\S+)\s*$/i;

/** Reads `Authorization: Bearer <key>`; with no keys configured every caller is let in, known by address. */
export function authenticate(request: IncomingMessage, keys: ApiKeyRegistry): Authentication {
  // With authentication off every caller is an admin, told apart by address.
  if (!keys.enabled)
    return { ok: true, caller: { id: `address:${request.socket.remoteAddress ?? 'unknown'}`, name: ANONYMOUS, role: 'admin' } };
  const header = request.headers.authorization;
  if (!header) return { ok: false, reason: 'missing' };
  const presented = bearer.exec(header)?.[1];
  const key = presented ? keys.find(presented) : undefined;
  if (!key) return { ok: false, reason: 'invalid' };
  return {
    ok: true,
    caller: { id: `key:${key.name}`, name: key.name, keyName: key.name, role: key.role, team: key.team, limits: key.limits },
  };
}
