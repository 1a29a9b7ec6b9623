import { ApiError, ledgerUnavailable } from '../errors/api-error';

/**
 * Runs a query against the ledger's database for a service. Typed API errors pass through, and so
 * does what `translate` turns into one (or rethrows as is); anything else is a database failure:
 * reported to `onError`, and answered 503 ledger_unavailable without its internals.
 */
export async function callLedger<T>(
  query: () => Promise<T>,
  onError: (error: unknown) => void,
  translate: (error: unknown) => Error | undefined = () => undefined,
): Promise<T> {
  try {
    return await query();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    const known = translate(error);
    if (known) throw known;
    onError(error);
    throw ledgerUnavailable('the ledger database did not answer');
  }
}
