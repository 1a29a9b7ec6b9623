/**
 * Money in the ledger is an integer count of 1e-10 USD: the precision of the gateway's cost
 * computation (src/pipeline/cost.ts), so a recorded cost is exactly the one answered, and sums
 * are exact integer sums in SQLite and PostgreSQL alike. A BIGINT holds about 922 million USD.
 */
export const COST_UNITS_PER_USD = 10_000_000_000;

/** A cost in USD (non-negative, at most 1e-10 precision) as cost units. */
export function usdToCostUnits(usd: number): number {
  if (!Number.isFinite(usd) || usd < 0) throw new RangeError(`a cost must be a non-negative number of USD, got ${usd}`);
  const units = Math.round(usd * COST_UNITS_PER_USD);
  if (!Number.isSafeInteger(units)) throw new RangeError(`a cost of ${usd} USD is too large to record exactly`);
  return units;
}

/** Cost units as USD: the nearest number to the exact amount. */
export function costUnitsToUsd(units: number | bigint): number {
  return Number(units) / COST_UNITS_PER_USD;
}
