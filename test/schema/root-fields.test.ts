/**
 * Rate limiting and error masking sit on root fields, in one place, for both schemas (the subgraph that
 * /graphql serves and the plain one REST runs): every root field, federation's included, is covered, and
 * nested fields run without them.
 */
import {
  type ExecutionResult,
  execute,
  subscribe,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isCompositeType,
  isNonNullType,
  isRequiredArgument,
  parse,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import pino from 'pino';
import type { MiddlewareFn } from 'type-graphql';
import type { RequestContext, Services } from '../../src/context';
import { createLogger } from '../../src/logger';
import { rootFieldsOf } from '../../src/middlewares/root-field-middlewares';
import { ProviderRegistry } from '../../src/providers/registry';
import { buildGatewaySchemas } from '../../src/schema';
import { SystemStatusService } from '../../src/services/system-status.service';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type RunningGateway } from '../support/start-gateway';

/** A value the argument's type accepts: enough to get past validation and coercion to the root field's middlewares. */
function sampleValue(type: GraphQLInputType): unknown {
  const inner = isNonNullType(type) ? type.ofType : type;
  if ('ofType' in inner) return []; // a list
  const named = getNamedType(inner);
  if (isEnumType(named)) return named.getValues()[0]?.value;
  if (isInputObjectType(named)) {
    const fields = Object.values(named.getFields()).filter((field) => isNonNullType(field.type));
    return Object.fromEntries(fields.map((field) => [field.name, sampleValue(field.type)]));
  }
  switch (named.name) {
    case 'JSONObject':
      return {};
    case 'Int':
    case 'Float':
      return 1;
    case 'Boolean':
      return true;
    default:
      return 'x';
  }
}

/** One operation that selects just this root field, with its required arguments as variables. */
function operationFor(
  operation: 'query' | 'mutation' | 'subscription',
  field: GraphQLField<unknown, RequestContext>,
): { document: string; variables: Record<string, unknown> } {
  const required = field.args.filter((argument: GraphQLArgument) => isRequiredArgument(argument));
  const definitions = required.map((argument) => `$${argument.name}: ${String(argument.type)}`).join(', ');
  const argumentsText = required.map((argument) => `${argument.name}: $${argument.name}`).join(', ');
  const selection = isCompositeType(getNamedType(field.type)) ? ' { __typename }' : '';
  return {
    document: `${operation}${definitions ? ` (${definitions})` : ''} { ${field.name}${argumentsText ? `(${argumentsText})` : ''}${selection} }`,
    variables: Object.fromEntries(required.map((argument) => [argument.name, sampleValue(argument.type)])),
  };
}

function operationsOf(
  schema: GraphQLSchema,
): Array<{ name: string; subscription: boolean; document: string; variables: Record<string, unknown> }> {
  return rootFieldsOf(schema).map(({ type, field }) => {
    const kind = type === schema.getMutationType() ? 'mutation' : type === schema.getSubscriptionType() ? 'subscription' : 'query';
    return { name: `${type.name}.${field.name}`, subscription: kind === 'subscription', ...operationFor(kind, field) };
  });
}

/** The first error code of a subscription over GraphQL-over-SSE (subscriptions do not run over POST /graphql). */
async function subscribeOnce(url: string, document: string, variables: Record<string, unknown>): Promise<unknown> {
  const response = await fetch(`${url}/graphql/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: document, variables }),
  });
  const text = await response.text();
  const data = text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice('data: '.length))
    .find((line) => line.includes('"errors"'));
  return data === undefined
    ? undefined
    : (JSON.parse(data) as { errors?: Array<{ extensions?: { code?: unknown } }> }).errors?.[0]?.extensions?.code;
}

describe('root fields over HTTP', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({
      env: {
        OPENAI_API_KEY: 'sk-test',
        OPENAI_BASE_URL: fake.url,
        RATE_LIMIT_GENERATE: '1',
        RATE_LIMIT_GENERATE_BATCH: '1',
        RATE_LIMIT_DEFAULT: '1',
      },
    });
  });

  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('rate-limits every root field that /graphql serves, federation fields included', async () => {
    const { subgraph } = await buildGatewaySchemas(createLogger('silent'));
    const operations = operationsOf(subgraph);
    expect(operations.map((operation) => operation.name)).toEqual(
      expect.arrayContaining(['Query._entities', 'Query._service', 'Mutation.generate']),
    );
    const secondCalls: Record<string, unknown> = {};
    for (const { name, subscription, document, variables } of operations) {
      // The first call is counted whatever it comes to (a made-up model is not found); the second is over the limit of 1.
      if (subscription) {
        await subscribeOnce(gateway.url, document, variables);
        secondCalls[name] = await subscribeOnce(gateway.url, document, variables);
        continue;
      }
      await gateway.graphql(document, variables);
      const { body } = await gateway.graphql(document, variables);
      secondCalls[name] = body.errors?.[0]?.extensions?.code;
    }
    expect(secondCalls).toEqual(Object.fromEntries(operations.map(({ name }) => [name, 'rate_limit_exceeded'])));
  });
});

describe('root field middlewares in both schemas', () => {
  const registry = new ProviderRegistry([]);
  const status = new SystemStatusService(registry, {
    version: 'test',
    dataDir: '.',
    minMemoryBytes: 0,
    minDiskBytes: 0,
    startupWarnings: [],
    ledgerReachable: async () => true,
    breakerStateOf: () => 'closed',
  });
  // Only what these operations reach: health reads the status service; the rest never get past the middlewares.
  const contextFor = (requestId: string): RequestContext =>
    ({ requestId, responseHeaders: new Map(), services: { status } as unknown as Services }) as unknown as RequestContext;

  it('masks what a middleware throws as internal_error naming the request id, and logs it, on every root field of both schemas', async () => {
    const logs: Array<{ requestId?: string; field?: string; msg?: string }> = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => logs.push(JSON.parse(line) as (typeof logs)[number]) });
    const failingProbe: MiddlewareFn<RequestContext> = () => {
      throw new Error('probe failure with internals');
    };
    const schemas = await buildGatewaySchemas(logger, [failingProbe]);
    for (const [label, schema] of Object.entries(schemas)) {
      for (const { name, subscription, document, variables } of operationsOf(schema)) {
        const requestId = `masking ${label} ${name}`;
        const args = { schema, document: parse(document), variableValues: variables, contextValue: contextFor(requestId) };
        // A subscription's middlewares wrap where it starts: graphql-js answers a refused start with its errors.
        const result = subscription ? ((await subscribe(args)) as ExecutionResult) : await execute(args);
        expect({ name, errors: result.errors?.map((error) => [error.message, error.extensions]) }).toEqual({
          name,
          errors: [['Internal server error', { code: 'internal_error', http: { status: 500 }, details: `request id ${requestId}` }]],
        });
        expect(logs.filter((line) => line.requestId === requestId)).toEqual([
          expect.objectContaining({ field: name, msg: 'unexpected error in resolver' }),
        ]);
      }
    }
  });

  it('runs the middlewares once per root field, not for its nested fields', async () => {
    const fieldsSeen: string[] = [];
    const countingProbe: MiddlewareFn<RequestContext> = ({ info }, next) => {
      fieldsSeen.push(`${info.parentType.name}.${info.fieldName}`);
      return next();
    };
    const schemas = await buildGatewaySchemas(createLogger('silent'), [countingProbe]);
    for (const schema of [schemas.plain, schemas.subgraph]) {
      const result = await execute({
        schema,
        document: parse('{ health { status version timestamp } again: health { status } }'),
        contextValue: contextFor('counting'),
      });
      expect(result.errors).toBeUndefined();
      expect(result.data).toEqual({
        health: { status: 'healthy', version: 'test', timestamp: expect.any(String) },
        again: { status: 'healthy' },
      });
    }
    expect(fieldsSeen).toEqual(['Query.health', 'Query.health', 'Query.health', 'Query.health']);
  });
});
