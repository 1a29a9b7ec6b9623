import 'reflect-metadata';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import type { Logger } from './logger';
import { createErrorMaskingMiddleware } from './middlewares/error-masking.middleware';
import { GenerateResolver } from './resolvers/generate/generate.resolver';
import { HealthResolver } from './resolvers/health/health.resolver';
import { ModelResolver } from './resolvers/models/model.resolver';

export const resolvers = [HealthResolver, ModelResolver, GenerateResolver] as const;

/** The plain schema, built from the type-graphql classes: the single source of the API contract. */
export function buildGatewaySchema(logger: Logger): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers,
    validate: false,
    globalMiddlewares: [createErrorMaskingMiddleware(logger)],
  });
}
