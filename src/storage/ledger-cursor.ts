import { InvalidCursorError } from './storage-errors';

/** Where a page ended: the (created_at, id) of its last row. The next page starts strictly after it. */
export interface LedgerPosition {
  readonly createdAtMs: number;
  readonly id: string;
}

const POSITION = /^(\d{1,16})\.([A-Za-z0-9_-]{1,100})$/;

export function encodeCursor(position: LedgerPosition): string {
  return Buffer.from(`${position.createdAtMs}.${position.id}`, 'utf8').toString('base64url');
}

/**
 * A page from rows read with `limit + 1` (newest first): the first `limit` items, and the cursor
 * after the last of them when the extra row shows that more follow.
 */
export function pageOf<Item extends { readonly id: string; readonly createdAt: Date }>(
  items: readonly Item[],
  limit: number,
): { readonly items: Item[]; readonly nextCursor: string | null } {
  const page = items.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page,
    nextCursor: items.length > limit && last ? encodeCursor({ createdAtMs: last.createdAt.getTime(), id: last.id }) : null,
  };
}

/** Reads a cursor that `encodeCursor` made; anything else is an InvalidCursorError. */
export function decodeCursor(cursor: string): LedgerPosition {
  const match = POSITION.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const createdAtMs = Number(match?.[1]);
  const id = match?.[2];
  if (id === undefined || !Number.isSafeInteger(createdAtMs)) throw new InvalidCursorError(cursor);
  const position = { createdAtMs, id };
  // Base64 decoding forgives stray characters; only the exact text we issued is accepted.
  if (encodeCursor(position) !== cursor) throw new InvalidCursorError(cursor);
  return position;
}
