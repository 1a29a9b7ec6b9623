import type { OpenApiContract, SchemaObject } from './openapi-contract';

/** A schema with its `$ref`s and `allOf` parts resolved once: shaping runs on every REST answer. */
interface PreparedSchema {
  readonly items: SchemaObject | undefined;
  readonly properties: Readonly<Record<string, SchemaObject>>;
  /** Properties whose schema allows null. */
  readonly nullable: ReadonlySet<string>;
}

const prepared = new WeakMap<SchemaObject, PreparedSchema>();

/**
 * GraphQL answers every optional field, with null when it has no value; the REST contract marks few
 * fields nullable. Drop nulls the contract does not allow, keep the ones it does (batch `text`, `error`).
 */
export function shapeForContract(value: unknown, schema: SchemaObject | undefined, contract: OpenApiContract): unknown {
  if (schema === undefined || value === null || typeof value !== 'object') return value;
  const { items, properties, nullable } = prepare(schema, contract);
  if (Array.isArray(value)) return value.map((item) => shapeForContract(item, items, contract));
  const shaped: Record<string, unknown> = {};
  // for-in, not Object.entries: no array per property on every answer (execution results are plain objects).
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    if (child === null && !nullable.has(key)) continue;
    shaped[key] = shapeForContract(child, properties[key], contract);
  }
  return shaped;
}

function prepare(schema: SchemaObject, contract: OpenApiContract): PreparedSchema {
  let found = prepared.get(schema);
  if (!found) {
    const resolved = contract.resolve(schema);
    const properties = collectProperties(resolved, contract);
    const nullable = new Set(Object.keys(properties).filter((key) => contract.resolve(properties[key]!).nullable));
    found = { items: resolved.items, properties, nullable };
    prepared.set(schema, found);
  }
  return found;
}

function collectProperties(schema: SchemaObject, contract: OpenApiContract): Record<string, SchemaObject> {
  const inherited = (schema.allOf ?? []).map((part) => collectProperties(contract.resolve(part), contract));
  return Object.assign({}, ...inherited, schema.properties ?? {});
}
