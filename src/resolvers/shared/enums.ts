/** A type-graphql enum object (`{ value: value }`) from the storage layer's list of allowed values, so both share one list. */
export const enumOf = <T extends string>(values: readonly T[]) =>
  Object.fromEntries(values.map((value) => [value, value])) as { [K in T]: K };
