import { type DocumentNode, type ExecutionArgs, type ExecutionResult, type execute, parse, print, validate } from 'graphql';
import { createSofa, createSofaRouter } from 'sofa-api';
import { createLogger } from '../../src/logger';
import { matchRoute, type OperationName, operationRoutes, restBasePath } from '../../src/rest/routes';
import {
  prepareOperation,
  prepareSofaOperations,
  readSchemaAsSofa,
  restVariables,
  withoutGraphQLOnlyFields,
} from '../../src/rest/sofa-operations';
import { buildGatewaySchemas } from '../../src/schema';

interface SofaRun {
  readonly document: string;
  readonly operationName: string | null | undefined;
  readonly variables: unknown;
}

/** A request body for each mutation route; queries have none. */
const sampleBodies: Partial<Record<OperationName, Record<string, unknown>>> = {
  'Mutation.generate': { prompt: 'a prompt', model_id: 'some-model', max_tokens: 5, temperature: 0.5, top_p: 0.9, seed: 7 },
  'Mutation.generate_batch': { prompts: ['one', 'two'], model_id: 'some-model', max_tokens: 5 },
};

/** Path parameters of a number type need a number: SOFA refuses anything else before it runs the operation. */
const numericPathParameters: ReadonlySet<string> = new Set(['version']);

const requestPath = (operation: OperationName): string =>
  operationRoutes[operation].path.replace(/:([a-z_]+)/g, (_match, name: string) =>
    numericPathParameters.has(name) ? '3' : `some%20${name}`,
  );

/** What SOFA's own router hands its executor for one request: the operation it generated for the route, and its variables. */
async function runThroughSofaRouter(operation: OperationName): Promise<SofaRun> {
  const { plain } = await buildGatewaySchemas(createLogger('silent'));
  const runs: SofaRun[] = [];
  const router = createSofaRouter(
    createSofa({
      schema: plain,
      basePath: restBasePath,
      routes: operationRoutes,
      // SOFA's own extension point: record instead of executing.
      execute: ((args: ExecutionArgs): ExecutionResult => {
        runs.push({ document: print(args.document as DocumentNode), operationName: args.operationName, variables: args.variableValues });
        return { data: {} };
      }) as typeof execute,
    }),
  );
  const { method } = operationRoutes[operation];
  const body = sampleBodies[operation];
  await router.fetch(
    new Request(`http://localhost${restBasePath}${requestPath(operation)}`, {
      method,
      ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    }),
    {},
  );
  expect(runs).toHaveLength(1);
  return runs[0] as SofaRun;
}

describe('the REST operations prepared at start-up', () => {
  it.each(Object.keys(operationRoutes) as OperationName[])(
    'are the operation and variables SOFA’s own router runs for %s (less the GraphQL-only fields)',
    async (operation) => {
      const { plain } = await buildGatewaySchemas(createLogger('silent'));
      const prepared = prepareSofaOperations(plain)[operation];
      const sofa = await runThroughSofaRouter(operation);
      expect(prepared && print(prepared.document)).toBe(print(withoutGraphQLOnlyFields(plain, parse(sofa.document))));
      expect(prepared?.operationName).toBe(sofa.operationName);
      expect(prepared?.fieldName).toBe(operation.split('.')[1]);

      const route = matchRoute(operationRoutes[operation].method, requestPath(operation));
      if (route.kind !== 'operation' || !prepared) throw new Error(`no route for ${operation}`);
      expect(restVariables(prepared, route.pathParameters, sampleBodies[operation] ?? {})).toEqual({ values: sofa.variables });
    },
  );

  it('are valid GraphQL against the schema, every route and the stream route’s subscription (start-up does not validate them)', async () => {
    const { plain } = await buildGatewaySchemas(createLogger('silent'));
    const prepared = [
      ...Object.values(prepareSofaOperations(plain)),
      prepareOperation(plain, 'Subscription.generate_stream', readSchemaAsSofa(plain)),
    ];
    expect(prepared).toHaveLength(Object.keys(operationRoutes).length + 1);
    for (const operation of prepared) {
      expect({ operation: operation.operationName, errors: validate(plain, operation.document).map((error) => error.message) }).toEqual({
        operation: operation.operationName,
        errors: [],
      });
    }
  });

  it('leave out Generation.feedback, which SOFA would select: the REST contract has no such field', async () => {
    const { plain } = await buildGatewaySchemas(createLogger('silent'));
    const sofa = await runThroughSofaRouter('Query.generations');
    expect(sofa.document).toMatch(/feedback \{/);
    const printed = print(prepareSofaOperations(plain)['Query.generations'].document);
    expect(printed).not.toContain('feedback');
    expect(printed).toContain('evaluation_id');
  });

  it('select every field of the answer, nested objects included', async () => {
    const { plain } = await buildGatewaySchemas(createLogger('silent'));
    const generate = prepareSofaOperations(plain)['Mutation.generate'];
    const printed = print(generate.document);
    for (const field of ['text', 'max_tokens', 'latency_ms', 'finish_reason', 'cost_usd', 'total', 'timestamp'])
      expect(printed).toContain(field);
  });

  it('refuse to start when a route names a root field the schema lacks', async () => {
    const { plain } = await buildGatewaySchemas(createLogger('silent'));
    // A fresh schema, so removing one of its root fields touches nothing else.
    delete plain.getQueryType()?.getFields().model;
    expect(() => prepareSofaOperations(plain)).toThrow(/Query\.model/);
  });
});
