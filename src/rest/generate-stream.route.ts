import type { ServerResponse } from 'node:http';
import { createSourceEventStream, type ExecutionArgs, execute, type GraphQLSchema } from 'graphql';
import type { RequestContext } from '../context';
import { errorBody, sendErrorResponse } from '../http/error-response';
import { ServerSentEvents } from '../http/server-sent-events';
import type { Logger } from '../logger';
import type { GenerateStreamEvent, StreamSourceItem } from '../resolvers/generate/generate-stream.type';
import { renderGraphQLErrors } from './error-response';
import type { OpenApiContract } from './openapi-contract';
import { shapeForContract } from './shape-response';
import { type PreparedOperation, restVariables } from './sofa-operations';

export interface GenerateStreamRouteSettings {
  readonly schema: GraphQLSchema;
  /** The `generate_stream` subscription as SOFA would build it (`prepareOperation`). */
  readonly operation: PreparedOperation;
  readonly contract: OpenApiContract;
  readonly heartbeatMs: number;
  readonly logger: Logger;
}

interface StreamEventData {
  readonly text: string;
  readonly response: Record<string, unknown> | null;
}

/** A `delta` event: the next text, nothing else (the subscription's resolver hands these on as they are). */
function isDelta(item: StreamSourceItem): item is GenerateStreamEvent & { readonly response: null } {
  return !('failure' in item) && item.response === null;
}

/**
 * POST /api/v1/generate/stream: server-sent events, written by hand because SOFA answers one JSON
 * document. It subscribes to `generate_stream`, the resolver GraphQL clients subscribe to,
 * so admission (rate limit, budget) and validation are the same; whatever is refused before the
 * upstream answers is an ordinary JSON error with its status. Then `delta` events, and one `done`
 * (the GenerateResponse, shaped as POST /generate answers it) or one `error` (an ErrorResponse).
 */
export function createGenerateStreamRoute(settings: GenerateStreamRouteSettings) {
  const { schema, contract, logger, operation } = settings;
  const responseSchema = contract.responseSchema('/generate', 'POST', '200');

  return async (response: ServerResponse, context: RequestContext, body: Readonly<Record<string, unknown>>): Promise<void> => {
    const headers = (): Record<string, string> => Object.fromEntries(context.responseHeaders);
    const variables = restVariables(operation, new Map(), body);
    if ('problem' in variables) {
      return sendErrorResponse(response, {
        status: 400,
        body: errorBody('validation_error', 'Invalid request parameters', variables.problem),
        headers: {},
      });
    }
    const subscription: ExecutionArgs = {
      schema,
      document: operation.document,
      variableValues: variables.values,
      contextValue: context,
      rootValue: undefined,
    };
    // The subscription's `subscribe` (admission, the upstream call) runs as for any GraphQL client.
    const started = await createSourceEventStream(subscription);
    if (!(Symbol.asyncIterator in started)) {
      const rendered = renderGraphQLErrors(started.errors ?? []);
      return sendErrorResponse(response, { ...rendered, headers: { ...rendered.headers, ...headers() } });
    }

    const events = new ServerSentEvents(response, settings.heartbeatMs, headers());
    try {
      for await (const item of started as AsyncIterable<StreamSourceItem>) {
        // A delta is written as it is: executing the selection set for each one (what `subscribe` does)
        // took 13-16% of a 4-chunk stream's CPU. The last event, the whole answer or the error ending the
        // stream, goes through the subscription's resolver and selection set.
        if (isDelta(item)) await events.send(JSON.stringify({ text: item.text }), 'delta');
        else {
          const result = await execute({ ...subscription, rootValue: item });
          if (result.errors) {
            const rendered = renderGraphQLErrors(result.errors);
            if (rendered.body.error === 'internal_error')
              logger.error({ requestId: context.requestId, errors: result.errors }, 'stream failed');
            await events.send(JSON.stringify(rendered.body), 'error');
            break;
          }
          const event = result.data?.[operation.fieldName] as StreamEventData;
          await events.send(JSON.stringify(shapeForContract(event.response!, responseSchema, contract)), 'done');
        }
        // Leaving the loop returns the subscription: the upstream call stops and the row is recorded.
        if (events.closed) break;
      }
    } catch (error) {
      logger.error({ err: error, requestId: context.requestId }, 'stream failed');
      await events.send(JSON.stringify(errorBody('internal_error', 'Internal server error', `request id ${context.requestId}`)), 'error');
    } finally {
      events.end();
    }
  };
}
