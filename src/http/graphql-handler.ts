import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer } from '@apollo/server';
import type { RequestContext } from '../context';
import { BodyTooLargeError, readBody } from './read-body';

export interface GraphQLHandlerSettings {
  readonly apollo: ApolloServer<RequestContext>;
  readonly maxBodyBytes: number;
}

/** Apollo Server on plain node:http: only /graphql bodies are parsed, so other routes see raw streams. */
export function createGraphQLHandler(settings: GraphQLHandlerSettings) {
  return async (request: IncomingMessage, response: ServerResponse, search: string, context: RequestContext): Promise<void> => {
    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    let body: unknown;
    if (request.method === 'POST') {
      let raw: string;
      try {
        raw = await readBody(request, settings.maxBodyBytes);
      } catch (error) {
        if (error instanceof BodyTooLargeError) {
          return sendGraphQLError(response, 413, 'payload_too_large', 'Request body is too large', error.message);
        }
        throw error;
      }
      if (isJson(headers.get('content-type'))) {
        try {
          body = raw.length > 0 ? JSON.parse(raw) : undefined;
        } catch {
          return sendGraphQLError(response, 400, 'validation_error', 'Request body is not valid JSON', 'malformed JSON');
        }
      }
    }
    const result = await settings.apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: request.method ?? 'GET', headers, search, body },
      context: async () => context,
    });
    // Answers depend on the caller and the moment (what Apollo's cache-control plugin, turned off, also said).
    response.setHeader('cache-control', 'no-store');
    for (const [name, value] of result.headers) response.setHeader(name, value);
    for (const [name, value] of context.responseHeaders) response.setHeader(name, value);
    response.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') {
      response.end(result.body.string);
      return;
    }
    for await (const chunk of result.body.asyncIterator) response.write(chunk);
    response.end();
  };
}

const isJson = (contentType: string | undefined): boolean =>
  contentType !== undefined && /^application\/(.+\+)?json\b/i.test(contentType.trim());

function sendGraphQLError(response: ServerResponse, status: number, code: string, message: string, details: string): void {
  response.statusCode = status;
  response.setHeader('content-type', 'application/json; charset=utf-8');
  response.end(JSON.stringify({ errors: [{ message, extensions: { code, details } }] }));
}
