import { validationError } from '../errors/api-error';
import { InvalidCursorError } from '../storage/storage-errors';

/** The contract's paging: `limit` 1-200, default 50. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** The page size asked for, or the default; anything else than an integer from 1 to 200 is a 400. */
export function pageLimit(limit: number | null | undefined): number {
  const size = limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw validationError('Invalid request parameters', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  return size;
}

/** `since` (inclusive) and `until` (exclusive) as given, without the absent ones; `until` before `since` is a 400. */
export function periodOf(query: { readonly since?: Date | null; readonly until?: Date | null }): { since?: Date; until?: Date } {
  const { since, until } = query;
  if (since && until && since.getTime() > until.getTime()) {
    throw validationError('Invalid request parameters', 'until: must not be before since');
  }
  return { ...(since ? { since } : {}), ...(until ? { until } : {}) };
}

/** For callLedger: a cursor the store did not issue is the client's error. */
export const invalidCursor = (error: unknown): Error | undefined =>
  error instanceof InvalidCursorError
    ? validationError('Invalid request parameters', 'cursor: not a cursor that this ledger issued')
    : undefined;
