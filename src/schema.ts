import 'reflect-metadata';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import { printSchemaWithDirectives } from '@graphql-tools/utils';
import { parse, type GraphQLSchema } from 'graphql';
import { buildSchema, createResolversMap, type MiddlewareFn } from 'type-graphql';
import type { RequestContext } from './context';
import type { Logger } from './logger';
import { createErrorMaskingMiddleware } from './middlewares/error-masking.middleware';
import { applyRootFieldMiddlewares } from './middlewares/root-field-middlewares';
import { GenerateResolver } from './resolvers/generate/generate.resolver';
import { GenerateStreamResolver } from './resolvers/generate/generate-stream.resolver';
import { BudgetResolver } from './resolvers/budgets/budget.resolver';
import { CompareResolver } from './resolvers/compare/compare.resolver';
import { DashboardResolver } from './resolvers/dashboard/dashboard.resolver';
import { DatasetResolver } from './resolvers/datasets/dataset.resolver';
import { EvaluationResolver } from './resolvers/evaluations/evaluation.resolver';
import { FeedbackResolver, GenerationFeedbackResolver } from './resolvers/feedback/feedback.resolver';
import { HealthResolver } from './resolvers/health/health.resolver';
import { LedgerResolver } from './resolvers/ledger/ledger.resolver';
import { resolveModelReference } from './resolvers/models/model.reference';
import { ModelResolver } from './resolvers/models/model.resolver';
import { PromptResolver } from './resolvers/prompts/prompt.resolver';

export const resolvers = [
  HealthResolver,
  ModelResolver,
  GenerateResolver,
  GenerateStreamResolver,
  LedgerResolver,
  BudgetResolver,
  FeedbackResolver,
  GenerationFeedbackResolver,
  CompareResolver,
  PromptResolver,
  DatasetResolver,
  EvaluationResolver,
  DashboardResolver,
] as const;

/** Federation v2 features this subgraph uses. */
export const federationLink = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])';

/**
 * type-graphql insists on a PubSub once a schema has subscriptions, but ours return their own
 * async iterables (`subscribe`): there are no topics to publish to.
 */
const noTopics = {
  publish(): void {
    throw new Error('LLMOP subscriptions have no topics; they use subscribe functions');
  },
  subscribe(): never {
    throw new Error('LLMOP subscriptions have no topics; they use subscribe functions');
  },
};

export interface GatewaySchemas {
  /** The type-graphql schema: what SOFA turns into REST (no `_service`, no `_entities`). */
  readonly plain: GraphQLSchema;
  /** The same schema as an Apollo Federation v2 subgraph: what /graphql serves. */
  readonly subgraph: GraphQLSchema;
}

// type-graphql has no option for root type descriptions; the docs explorer shows them first.
function describeRootTypes(schema: GraphQLSchema): void {
  const query = schema.getQueryType();
  const mutation = schema.getMutationType();
  const subscription = schema.getSubscriptionType();
  if (subscription)
    subscription.description =
      'Streams, over GraphQL-over-SSE (/graphql/stream) or WebSocket (/graphql): a generation as it is produced, and the progress of an evaluation run.';
  if (query)
    query.description =
      'Reads: health, status, readiness, the models LLMOP can route to, the ledger of generations with its usage, and budgets.';
  if (mutation)
    mutation.description =
      'Text generation with fine-tuned, self-hosted and commercial models, metered in tokens and USD; budget management.';
}

/** The subgraph's SDL as written: federation link, then every type with its directives (emitted to schema/schema.graphql). */
export function printSubgraphSdl(plain: GraphQLSchema): string {
  return `${federationLink}\n\n${printSchemaWithDirectives(plain)}\n`;
}

/**
 * Builds the schema from the type-graphql classes (the single source of the contract) and its subgraph form.
 * `middlewares` run around every root field of both (federation's `_entities` and `_service` included),
 * inside error masking, so what they throw is typed or masked; nested fields run without them.
 */
export async function buildGatewaySchemas(
  logger: Logger,
  middlewares: ReadonlyArray<MiddlewareFn<RequestContext>> = [],
): Promise<GatewaySchemas> {
  // No globalMiddlewares: type-graphql would run them around every nested field too. skipCheck:
  // its check runs a whole introspection query (~0.1 s of start-up); buildSubgraphSchema below
  // validates the same types, and graphql validates `plain` before its first execution.
  const plain = await buildSchema({ resolvers, validate: false, skipCheck: true, pubSub: noTopics });
  describeRootTypes(plain);
  const typeDefs = parse(printSubgraphSdl(plain));
  const resolverMap = createResolversMap(plain) as GraphQLResolverMap<unknown>;
  // Passed here, not through type-graphql's helper: @apollo/subgraph 2.14 ignores a reference resolver added that way.
  resolverMap.Model = {
    ...(resolverMap.Model as object),
    __resolveReference: resolveModelReference,
  } as GraphQLResolverMap<unknown>[string];
  const subgraph = buildSubgraphSchema({ typeDefs, resolvers: resolverMap });
  // After the resolver map is taken from `plain`, so each schema's root fields are wrapped once.
  const rootFieldMiddlewares = [createErrorMaskingMiddleware(logger), ...middlewares];
  applyRootFieldMiddlewares(plain, rootFieldMiddlewares);
  applyRootFieldMiddlewares(subgraph, rootFieldMiddlewares);
  return { plain, subgraph };
}
