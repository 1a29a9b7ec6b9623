import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from '../context';
import { BodyTooLargeError, readBody } from '../http/read-body';
import type { Logger } from '../logger';
import type { OperationRateLimiter } from '../middlewares/operation-rate-limiter';
import type { OpenAIHandler } from '../server';
import { createChatCompletionsRoute } from './chat-completions.route';
import { ModelsRoute } from './models.route';
import {
  InvalidRequestError,
  openAIError,
  type RenderedOpenAIError,
  sendOpenAIError,
  sendOpenAIJson,
  toOpenAIError,
  withOpenAIRateLimitHeaders,
} from './openai-errors';

export interface OpenAIHandlerSettings {
  readonly rateLimiter: OperationRateLimiter;
  readonly maxBodyBytes: number;
  /** Streams send a comment line when this long passes without a write. */
  readonly streamHeartbeatMs: number;
  readonly logger: Logger;
}

const chatCompletionsPath = '/v1/chat/completions';
const modelsPath = '/v1/models';

/**
 * The OpenAI-compatible API at /v1, for clients built on OpenAI's SDKs: POST /v1/chat/completions
 * (streamed or not), GET /v1/models and GET /v1/models/{id}. Every answer, errors included, is in
 * OpenAI's shape with LLMOP's status codes. Authentication happened before (server.ts).
 */
export function createOpenAIHandler(settings: OpenAIHandlerSettings): OpenAIHandler {
  const { logger } = settings;
  const chatCompletions = createChatCompletionsRoute({
    rateLimiter: settings.rateLimiter,
    heartbeatMs: settings.streamHeartbeatMs,
    logger,
  });
  const models = new ModelsRoute();

  const route = async (request: IncomingMessage, response: ServerResponse, context: RequestContext): Promise<void> => {
    const method = request.method ?? 'GET';
    const { pathname } = new URL(request.url ?? '/', 'http://localhost');
    if (pathname === chatCompletionsPath) {
      if (method !== 'POST') return methodNotAllowed(response, method, pathname, 'POST');
      return chatCompletions(response, context, await readJson(request, settings.maxBodyBytes));
    }
    if (pathname === modelsPath) {
      if (method !== 'GET') return methodNotAllowed(response, method, pathname, 'GET');
      // The same allowance as GET /api/v1/models.
      await settings.rateLimiter.checkRoute(context, 'models');
      return sendOpenAIJson(response, 200, await models.list(context), headersOf(context));
    }
    if (pathname.startsWith(`${modelsPath}/`)) {
      if (method !== 'GET') return methodNotAllowed(response, method, pathname, 'GET');
      await settings.rateLimiter.checkRoute(context, 'model');
      // Model ids may hold slashes: everything after the prefix is the id.
      const modelId = decoded(pathname.slice(modelsPath.length + 1));
      return sendOpenAIJson(response, 200, await models.retrieve(context, modelId), headersOf(context));
    }
    sendOpenAIError(response, openAIError(404, `Invalid URL (${method} ${pathname})`, 'not_found'));
  };

  return {
    async handle(request, response, context) {
      try {
        await route(request, response, context);
      } catch (error) {
        if (response.headersSent) {
          logger.error({ err: error, requestId: context.requestId }, 'OpenAI-compatible request failed mid-answer');
          response.destroy();
          return;
        }
        const rendered = toOpenAIError(error, {
          requestId: context.requestId,
          onUnexpected: (unexpected) => logger.error({ err: unexpected, requestId: context.requestId }, 'OpenAI-compatible request failed'),
        });
        sendOpenAIError(response, rendered, headersOf(context));
      }
    },
    unauthorized(response, reason) {
      const message =
        reason === 'missing'
          ? "You didn't provide an API key. Send your LLMOP API key as Authorization: Bearer <key> (the OpenAI SDK's apiKey)."
          : 'The API key is not valid.';
      response.setHeader('www-authenticate', 'Bearer realm="llmop"');
      sendOpenAIError(response, openAIError(401, message, 'invalid_api_key'));
    },
  };
}

/** The body as JSON: 413 past the body limit (thrown as BodyTooLargeError), 400 when it does not parse. */
async function readJson(request: IncomingMessage, limitBytes: number): Promise<unknown> {
  const raw = await readBody(request, limitBytes).catch((error: unknown) => {
    if (error instanceof BodyTooLargeError) throw error;
    throw new InvalidRequestError('The request body could not be read.', null);
  });
  try {
    return JSON.parse(raw);
  } catch {
    throw new InvalidRequestError('We could not parse the JSON body of your request: it must be a JSON object.', null);
  }
}

function methodNotAllowed(response: ServerResponse, method: string, pathname: string, allowed: string): void {
  const rendered: RenderedOpenAIError = openAIError(405, `${method} is not allowed on ${pathname}; use ${allowed}.`, 'method_not_allowed');
  sendOpenAIError(response, rendered, { allow: allowed });
}

/** A malformed escape is taken as written: it names no model, and the lookup says so. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const headersOf = (context: RequestContext): Record<string, string> => withOpenAIRateLimitHeaders(context.responseHeaders);
