import type { OpenApiContract, SchemaObject } from './openapi-contract';

/**
 * GraphQL answers every optional field, with null when it has no value; the REST contract marks few
 * fields nullable. Drop nulls the contract does not allow, keep the ones it does (batch `text`, `error`).
 */
export function shapeForContract(value: unknown, schema: SchemaObject | undefined, contract: OpenApiContract): unknown {
  if (schema === undefined || value === null || typeof value !== 'object') return value;
  const resolved = contract.resolve(schema);
  if (Array.isArray(value)) return value.map((item) => shapeForContract(item, resolved.items, contract));
  const properties = collectProperties(resolved, contract);
  const shaped: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const childSchema = properties[key];
    if (child === null && !(childSchema && contract.resolve(childSchema).nullable)) continue;
    shaped[key] = shapeForContract(child, childSchema, contract);
  }
  return shaped;
}

function collectProperties(schema: SchemaObject, contract: OpenApiContract): Record<string, SchemaObject> {
  const inherited = (schema.allOf ?? []).map((part) => collectProperties(contract.resolve(part), contract));
  return Object.assign({}, ...inherited, schema.properties ?? {});
}
