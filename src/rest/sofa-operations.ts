import path from 'node:path';
import { buildOperationNodeForField } from '@graphql-tools/utils';
import { Kind, OperationTypeNode, TypeInfo, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema, type TypeNode } from 'graphql';
import type { createSofa as CreateSofa } from 'sofa-api';
import { operationRoutes, restBasePath, type OperationName } from './routes';

export interface PreparedVariable {
  readonly name: string;
  /** A list type: REST wants a JSON array where GraphQL would wrap a single value into a list. */
  readonly isList: boolean;
  /** The named type, to read a query-string value as the number GraphQL expects. */
  readonly typeName: string;
}

/** One route's GraphQL operation, generated from the schema once, at start-up. */
export interface PreparedOperation {
  readonly fieldName: string;
  readonly operationName: string;
  readonly document: DocumentNode;
  readonly variables: readonly PreparedVariable[];
}

const rootKinds = {
  Query: OperationTypeNode.QUERY,
  Mutation: OperationTypeNode.MUTATION,
  Subscription: OperationTypeNode.SUBSCRIPTION,
} as const;

/**
 * The operation SOFA's router runs for each route, built the way SOFA builds it (its reading of the schema,
 * then `buildOperationNodeForField`), without its WHATWG Request/Response layer around every call.
 */
export function prepareSofaOperations(
  schema: GraphQLSchema,
  sofa: SofaReading = readSchemaAsSofa(schema),
): Readonly<Record<OperationName, PreparedOperation>> {
  const prepared: Partial<Record<OperationName, PreparedOperation>> = {};
  for (const operation of Object.keys(operationRoutes) as OperationName[]) {
    prepared[operation] = prepareOperation(schema, operation, sofa);
  }
  // Every route was prepared above, or start-up stopped.
  return prepared as Record<OperationName, PreparedOperation>;
}

/**
 * One root field's operation as SOFA would build it (a subscription too, for a hand-written stream
 * route that runs the same resolver): every field of its result selected, variables for its arguments.
 */
export function prepareOperation(
  schema: GraphQLSchema,
  operation: `${keyof typeof rootKinds}.${string}`,
  sofa: SofaReading,
): PreparedOperation {
  const [rootName, fieldName] = operation.split('.') as [keyof typeof rootKinds, string];
  const rootType = { Query: schema.getQueryType(), Mutation: schema.getMutationType(), Subscription: schema.getSubscriptionType() }[
    rootName
  ];
  if (!rootType?.getFields()[fieldName]) throw new Error(`REST route ${operation}: the schema has no ${operation} field`);
  const definition = buildOperationNodeForField({
    kind: rootKinds[rootName],
    schema,
    field: fieldName,
    models: sofa.models,
    ignore: sofa.ignore,
    circularReferenceDepth: sofa.depthLimit,
  });
  // Not validated here: validating every route's document took ~70-110 ms of each start, and the documents
  // follow from the schema alone, so test/rest/sofa-operations.test.ts validates every one of them instead.
  const document = withoutGraphQLOnlyFields(schema, { kind: Kind.DOCUMENT, definitions: [definition] });
  return {
    fieldName,
    operationName: definition.name?.value ?? fieldName,
    document,
    variables: (definition.variableDefinitions ?? []).map((variable) => ({
      name: variable.variable.name.value,
      isList: withoutNonNull(variable.type).kind === Kind.LIST_TYPE,
      typeName: namedType(variable.type),
    })),
  };
}

/** SOFA's reading of the schema: which types are models, what to ignore, how deep to select. */
export type SofaReading = ReturnType<typeof CreateSofa>;

/** Made once at start-up and shared by every prepared operation (it walks the whole schema). */
export function readSchemaAsSofa(schema: GraphQLSchema): SofaReading {
  return loadCreateSofa()({ schema, basePath: restBasePath });
}

/** Fields the REST contract's types do not have: GraphQL clients ask for them; REST answers never carry them. */
const graphQLOnlyFields: ReadonlySet<string> = new Set(['Generation.feedback']);

/** The document without the fields of `graphQLOnlyFields`. */
export function withoutGraphQLOnlyFields(schema: GraphQLSchema, document: DocumentNode): DocumentNode {
  const typeInfo = new TypeInfo(schema);
  return visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        const parent = typeInfo.getParentType();
        return parent && graphQLOnlyFields.has(`${parent.name}.${node.name.value}`) ? null : undefined;
      },
    }),
  );
}

/**
 * SOFA's `createSofa` from its own module: the package index also loads SOFA's router (fets, @whatwg-node),
 * ~250 ms of start-up for code REST no longer runs. test/rest/sofa-operations.test.ts holds the operations
 * to what SOFA's router runs.
 */
function loadCreateSofa(): typeof CreateSofa {
  const modulePath = path.join(path.dirname(require.resolve('sofa-api')), 'sofa.js');
  const sofaModule = require(modulePath) as { createSofa?: unknown };
  if (typeof sofaModule.createSofa !== 'function') throw new Error(`${modulePath} no longer exports createSofa; import it from 'sofa-api'`);
  return sofaModule.createSofa as typeof CreateSofa;
}

/** A segment that is not valid percent-encoded UTF-8 names nothing that exists: it is looked up as written (a 404). */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const withoutNonNull = (type: TypeNode): TypeNode => (type.kind === Kind.NON_NULL_TYPE ? type.type : type);
const namedType = (type: TypeNode): string => (type.kind === Kind.NAMED_TYPE ? type.name.value : namedType(type.type));

const integerText = /^-?\d+$/;
const numberText = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * A query-string value as the variable's type reads it: text stays text (enums and dates included,
 * for GraphQL to check), numbers and booleans must be written as such.
 */
function fromQueryString(variable: PreparedVariable, text: string): { value: unknown } | { problem: string } {
  switch (variable.typeName) {
    case 'Int':
    case 'SafeInt':
      return integerText.test(text) ? { value: Number(text) } : { problem: `${variable.name} must be an integer` };
    case 'Float':
      return numberText.test(text) ? { value: Number(text) } : { problem: `${variable.name} must be a number` };
    case 'Boolean':
      return text === 'true' || text === 'false' ? { value: text === 'true' } : { problem: `${variable.name} must be true or false` };
    default:
      return { value: text };
  }
}

export type RestVariables = { readonly values: Record<string, unknown> } | { readonly problem: string };

/**
 * Variables as SOFA reads them: a path parameter, else the query parameter (GET, DELETE) or body field (POST, PATCH) of
 * the same name; null means not given. Types, required fields and ranges are left to GraphQL coercion and
 * the services, as on /graphql; only what GraphQL would accept but the REST contract does not (a single
 * value for an array) and query-string numbers that are not numbers are refused here.
 */
export function restVariables(
  operation: PreparedOperation,
  pathParameters: ReadonlyMap<string, string>,
  body: Readonly<Record<string, unknown>>,
  query?: URLSearchParams,
): RestVariables {
  const values: Record<string, unknown> = {};
  for (const variable of operation.variables) {
    const { name, isList } = variable;
    const segment = pathParameters.get(name);
    if (segment !== undefined) {
      // As SOFA does: a segment is read as its variable's type (`/prompts/x/versions/2` is the Int 2).
      const read = fromQueryString(variable, decodeSegment(segment));
      if ('problem' in read) return read;
      values[name] = read.value;
      continue;
    }
    if (query) {
      const text = query.get(name);
      if (text === null) continue;
      const read = fromQueryString(variable, text);
      if ('problem' in read) return read;
      values[name] = read.value;
      continue;
    }
    const value = Object.hasOwn(body, name) ? body[name] : undefined;
    if (value === undefined || value === null) continue;
    if (isList && !Array.isArray(value)) return { problem: `${name} must be a JSON array` };
    values[name] = value;
  }
  return { values };
}
