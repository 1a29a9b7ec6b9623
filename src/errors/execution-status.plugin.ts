import type { ApolloServerPlugin, BaseContext, GraphQLRequestListener } from '@apollo/server';

const resetStatusOfExecutedOperations: GraphQLRequestListener<BaseContext> = {
  async willSendResponse({ response }) {
    const executed = response.body.kind === 'incremental' || response.body.singleResult.data !== undefined;
    if (executed) response.http.status = 200;
  },
};

/**
 * An executed operation answers HTTP 200 whatever its errors, as GraphQL over HTTP says: a supergraph
 * router reads any other status as a failed subgraph and drops the errors' codes and the sibling fields'
 * data. Typed errors keep `extensions.http.status` for REST, and Apollo copies it onto the response
 * head; this undoes that for execution results only. Requests that never executed (unparseable,
 * invalid, no operation) have no `data` and keep their 4xx.
 */
export const executionStatusPlugin: ApolloServerPlugin<BaseContext> = {
  requestDidStart: async () => resetStatusOfExecutedOperations,
};
