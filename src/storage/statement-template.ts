import { type CompiledQuery, createQueryId } from 'kysely';

/** Stands for the value at `index` while a template is compiled. */
class Slot {
  constructor(readonly index: number) {}
}

/** Binds a compiled template to the values of one call. */
export type BoundStatement<Values extends readonly unknown[]> = (...values: Values) => CompiledQuery;

/**
 * A statement whose SQL depends only on its shape, compiled once and bound to new values per call.
 * Kysely builds and walks a query's whole operation tree on every `compile()`: tens of µs for each of
 * the statements a budgeted generation runs (the budgets that apply, the hold, the settlement), more
 * than SQLite takes to run them. `compile` gets one placeholder per value and must use each as a
 * parameter (never as SQL text: a placeholder found nowhere among the parameters throws here).
 */
export function statementTemplate<Values extends readonly unknown[]>(
  arity: Values['length'],
  compile: (...slots: Values) => CompiledQuery,
): BoundStatement<Values> {
  const slots = Array.from({ length: arity }, (_, index) => new Slot(index));
  const compiled = compile(...(slots as unknown as Values));
  const used = new Set(compiled.parameters.flatMap((parameter) => (parameter instanceof Slot ? [parameter.index] : [])));
  const unused = slots.filter((slot) => !used.has(slot.index));
  if (unused.length > 0) throw new Error(`statement template: values ${unused.map((slot) => slot.index).join(', ')} are not parameters`);
  const { sql, query, parameters } = compiled;
  return (...values) => ({
    sql,
    query,
    queryId: createQueryId(),
    parameters: parameters.map((parameter) => (parameter instanceof Slot ? values[parameter.index] : parameter)),
  });
}
