import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Completion } from 'openai/resources/completions';
import type { FinishReason, GenerationRequest, StreamPart, TokenUsage } from '../provider';
import { chatMessagesOf, type MaxTokensParameter, mapUsage, seedOf, stopOf } from './generate-text';
import { mapOpenAIFinishReason } from './map-finish-reason';

/**
 * One prompt as a stream through the chat or completions endpoint. Resolves once the upstream has
 * answered its headers (a refusal is thrown here, before anything streams). `include_usage` asks for
 * the usage in a last chunk; upstreams that ignore it are metered by the tokenizer.
 */
export async function streamWithOpenAISdk(
  client: OpenAI,
  request: GenerationRequest,
  maxTokensParameter: MaxTokensParameter,
): Promise<{ readonly chunks: AsyncIterable<StreamPart>; readonly upstreamRequestId?: string }> {
  const { model } = request;
  const sampling = {
    temperature: request.temperature,
    top_p: request.topP,
    ...seedOf(request),
    ...stopOf(request),
    stream: true as const,
    stream_options: { include_usage: true },
  };
  const options = { signal: request.signal };
  if (model.api === 'completion') {
    const { data, request_id } = await client.completions
      .create({ model: model.upstreamModel, prompt: request.prompt, max_tokens: request.maxTokens, ...sampling }, options)
      .withResponse();
    return { chunks: parts(data, model.upstreamModel, completionText, request.signal), upstreamRequestId: request_id ?? undefined };
  }
  const { data, request_id } = await client.chat.completions
    .create(
      { model: model.upstreamModel, messages: chatMessagesOf(request), [maxTokensParameter]: request.maxTokens, ...sampling },
      options,
    )
    .withResponse();
  return { chunks: parts(data, model.upstreamModel, chatText, request.signal), upstreamRequestId: request_id ?? undefined };
}

type Chunk = ChatCompletionChunk | Completion;

const chatText = (chunk: Chunk): string | null | undefined => (chunk as ChatCompletionChunk).choices?.[0]?.delta?.content;
const completionText = (chunk: Chunk): string | null | undefined => (chunk as Completion).choices?.[0]?.text;

/**
 * The SDK's chunks as stream parts: each non-empty text, then one finish with the usage of the last
 * chunk. An aborted request ends in an error, never in a finish: the SDK's stream ends quietly when
 * its request is aborted, which would pass a cut answer off as a whole one. Aborted, it is always the
 * SDK's `APIUserAbortError`: the body fails with the signal's own reason (the fetch gets the caller's
 * signal, src/providers/openai-sdk/signalled-client.ts), which may be a TimeoutError or a stop's string.
 */
async function* parts(
  chunks: AsyncIterable<Chunk>,
  requestedModel: string,
  textOf: (chunk: Chunk) => string | null | undefined,
  signal: AbortSignal | undefined,
) {
  let upstreamModel = requestedModel;
  let finishReason: FinishReason | undefined;
  let usage: TokenUsage | undefined;
  try {
    for await (const chunk of chunks) {
      if (chunk.model) upstreamModel = chunk.model;
      usage = mapUsage(chunk.usage) ?? usage;
      const text = textOf(chunk);
      if (text) yield { type: 'text', text } satisfies StreamPart;
      const reason = chunk.choices?.[0]?.finish_reason;
      if (reason) finishReason = mapOpenAIFinishReason(reason);
    }
  } catch (error) {
    if (signal?.aborted) throw new OpenAI.APIUserAbortError();
    throw error;
  }
  if (signal?.aborted) throw new OpenAI.APIUserAbortError();
  // A server that closes cleanly without a finish reason is reported as `other`, not guessed.
  yield { type: 'finish', finishReason: finishReason ?? 'other', upstreamModel, usage } satisfies StreamPart;
}
