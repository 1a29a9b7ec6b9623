import { DateTimeISOResolver, JSONObjectResolver, SafeIntResolver } from 'graphql-scalars';

/** ISO 8601 date-time, as the spec's `format: date-time`. */
export const DateTimeISO = DateTimeISOResolver;

/** Byte counts exceed GraphQL's 32-bit Int; SafeInt still serializes as a JSON integer. */
export const SafeInt = SafeIntResolver;

/** A JSON object (template variables, per-scorer figures): the services check what its values must be. */
export const JSONObject = JSONObjectResolver;
