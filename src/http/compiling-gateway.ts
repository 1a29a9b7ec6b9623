import type { ApolloServerOptionsWithGateway } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';
import type { CompiledExecutor } from './compiled-executor';

type Gateway = ApolloServerOptionsWithGateway<never>['gateway'];

/**
 * How Apollo Server runs /graphql's operations through a CompiledExecutor: Apollo's one hook for its
 * own executor is a "gateway" that serves a fixed schema. Apollo still does everything before execution
 * (parsing and its document cache, validation with the hostile-document rules, the plugins, error
 * formatting, HTTP statuses); only `execute` is ours, and answers as graphql-js's does.
 */
export function compilingGateway(schema: GraphQLSchema, run: CompiledExecutor): Gateway {
  return {
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => undefined;
    },
    async load() {
      return {
        // The operation name the client sent: Apollo's own is null when that name picks no operation,
        // and graphql-js must see the name to refuse it as it does without a gateway.
        executor: ({ document, request, context }) =>
          run({
            document,
            operationName: request.operationName,
            variables: request.variables,
            context,
            // A router asking for a federated trace (ftv1): Apollo's trace plugin wraps the schema's resolvers
            // when the first such request comes, and a compiled operation keeps the resolvers it was compiled with.
            interpreted: request.http?.headers.get('apollo-federation-include-trace') === 'ftv1',
          }),
      };
    },
    async stop() {},
  };
}
