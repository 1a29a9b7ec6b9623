import type { GraphQLSchema } from 'graphql';
import { Response } from 'fets';
import { useSofa } from 'sofa-api';
import type { RequestContext } from '../context';
import type { Logger } from '../logger';
import { renderGraphQLErrors } from './error-response';
import { operationRoutes } from './routes';

export const restBasePath = '/api/v1';

/** What the REST handler hands SOFA per request: the same context GraphQL requests get. */
export interface SofaServerContext {
  readonly gatewayContext: RequestContext;
}

/** SOFA turns each root field of the plain (non-federated) schema into a REST route. */
export function createSofaRouter(schema: GraphQLSchema, logger: Logger) {
  return useSofa({
    schema,
    basePath: restBasePath,
    routes: operationRoutes,
    context: (serverContext) => (serverContext as unknown as SofaServerContext).gatewayContext,
    errorHandler: (errors) => {
      const rendered = renderGraphQLErrors(errors);
      if (rendered.status >= 500 && rendered.body.error === 'internal_error') {
        logger.error({ errors: errors.map((error) => String((error as Error)?.message)) }, 'REST operation failed');
      }
      // fets types statuses as a literal union; ours come from typed errors.
      return Response.json(rendered.body, { status: rendered.status as Response['status'], headers: rendered.headers });
    },
  });
}
