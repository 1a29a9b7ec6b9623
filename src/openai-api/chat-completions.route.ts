import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context';
import { ServerSentEvents } from '../http/server-sent-events';
import type { Logger } from '../logger';
import type { OperationRateLimiter } from '../middlewares/operation-rate-limiter';
import type { GenerateInput, GenerationStream } from '../pipeline/generation-pipeline';
import { type ChatCompletionRequest, parseChatRequest } from './chat-request';
import { ChunkWriter, chatCompletionOf } from './chat-response';
import { sendOpenAIError, sendOpenAIJson, toOpenAIError, withOpenAIRateLimitHeaders } from './openai-errors';

export interface ChatCompletionsRouteSettings {
  readonly rateLimiter: OperationRateLimiter;
  /** Streams send a comment line when this long passes without a write. */
  readonly heartbeatMs: number;
  readonly logger: Logger;
}

/**
 * POST /v1/chat/completions: the request checked for what OpenAI's API allows and LLMOP can honour,
 * counted against the caller's `generate` limit, then run by the generation pipeline like every
 * other generation (budgets, ledger with source `openai`). Whatever is refused before the upstream
 * answers is an ordinary JSON error; a stream's later failure is one `data: {"error": ...}` event.
 */
export function createChatCompletionsRoute(settings: ChatCompletionsRouteSettings) {
  const { rateLimiter, logger } = settings;

  return async (response: ServerResponse, context: RequestContext, body: unknown): Promise<void> => {
    let request: ChatCompletionRequest | undefined;
    let stream: GenerationStream;
    try {
      request = parseChatRequest(body);
      // One allowance with POST /api/v1/generate and the other surfaces: switching surface does not multiply it.
      await rateLimiter.checkRoute(context, 'generate');
      const input = inputOf(request);
      if (!request.stream) {
        const outcome = await context.services.generation.generate(input, context);
        return sendOpenAIJson(response, 200, chatCompletionOf(outcome), headersOf(context));
      }
      // Resolves once the upstream has answered: until then a refusal is an ordinary JSON error.
      stream = await context.services.generation.stream(input, context);
    } catch (error) {
      return sendOpenAIError(response, render(error, context, request), headersOf(context));
    }
    return relay(response, context, stream, request.includeUsage);
  };

  async function relay(response: ServerResponse, context: RequestContext, stream: GenerationStream, includeUsage: boolean): Promise<void> {
    const events = new ServerSentEvents(response, settings.heartbeatMs, headersOf(context));
    const chunks = new ChunkWriter(stream.generationId, stream.modelId, includeUsage);
    try {
      await events.send(chunks.role());
      for await (const event of stream) {
        if (event.type === 'delta') {
          if (event.text !== '') await events.send(chunks.content(event.text));
        } else {
          await events.send(chunks.finish(event.outcome));
          if (includeUsage) await events.send(chunks.usage(event.outcome));
          await events.send('[DONE]');
        }
        // Leaving the loop returns the stream: the upstream call stops and the row is recorded as cancelled.
        if (events.closed) break;
      }
    } catch (error) {
      // What OpenAI does when a stream fails: an error object as the last event, and no [DONE].
      await events.send(JSON.stringify({ error: render(error, context).error }));
    } finally {
      events.end();
    }
  }

  function render(error: unknown, context: RequestContext, request?: ChatCompletionRequest) {
    return toOpenAIError(error, {
      requestId: context.requestId,
      onUnexpected: (unexpected) => logger.error({ err: unexpected, requestId: context.requestId }, 'chat completion failed'),
      rename: (field) => (field === 'max_tokens' && request ? request.maxTokensField : field),
    });
  }
}

function inputOf(request: ChatCompletionRequest): GenerateInput {
  return {
    // The conversation's transcript is the prompt the ledger keeps and a completion model reads.
    prompt: '',
    messages: request.messages,
    modelId: request.model,
    maxTokens: request.maxTokens,
    temperature: request.temperature,
    topP: request.topP,
    seed: request.seed,
    stop: request.stop,
    origin: { source: 'openai' },
  };
}

const headersOf = (context: RequestContext): Record<string, string> => withOpenAIRateLimitHeaders(context.responseHeaders);
