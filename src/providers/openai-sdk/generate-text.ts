import type OpenAI from 'openai';
import { ProviderError, type ChatMessage, type GenerationRequest, type GenerationResult, type TokenUsage } from '../provider';
import { mapOpenAIFinishReason } from './map-finish-reason';

/** Which field carries the output limit: OpenAI's current API wants max_completion_tokens, most servers max_tokens. */
export type MaxTokensParameter = 'max_tokens' | 'max_completion_tokens';

export interface SdkUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

/** One prompt through the chat or completions endpoint, as the model's `api` says. */
export async function generateWithOpenAISdk(
  client: OpenAI,
  request: GenerationRequest,
  maxTokensParameter: MaxTokensParameter,
  providerName: string,
): Promise<Omit<GenerationResult, 'latencyMs'>> {
  const { model } = request;
  const options = { signal: request.signal };
  if (model.api === 'completion') {
    const completion = await client.completions.create(
      {
        model: model.upstreamModel,
        prompt: request.prompt,
        max_tokens: request.maxTokens,
        temperature: request.temperature,
        top_p: request.topP,
        ...seedOf(request),
        ...stopOf(request),
      },
      options,
    );
    const choice = completion.choices?.[0];
    if (!choice || typeof choice.text !== 'string') throw noChoice(providerName);
    return {
      text: choice.text,
      finishReason: mapOpenAIFinishReason(choice.finish_reason),
      upstreamModel: completion.model ?? model.upstreamModel,
      usage: mapUsage(completion.usage),
      upstreamRequestId: completion._request_id ?? undefined,
    };
  }
  const completion = await client.chat.completions.create(
    {
      model: model.upstreamModel,
      messages: chatMessagesOf(request),
      [maxTokensParameter]: request.maxTokens,
      temperature: request.temperature,
      top_p: request.topP,
      ...seedOf(request),
      ...stopOf(request),
    },
    options,
  );
  const choice = completion.choices?.[0];
  if (!choice?.message) throw noChoice(providerName);
  return {
    text: choice.message.content ?? '',
    finishReason: mapOpenAIFinishReason(choice.finish_reason),
    upstreamModel: completion.model ?? model.upstreamModel,
    usage: mapUsage(completion.usage),
    upstreamRequestId: completion._request_id ?? undefined,
  };
}

/**
 * Several prompts with the same model and parameters in ONE completions call (the completions API
 * takes a list of prompts; vLLM and llama.cpp server batch them on the GPU). Choice `index` i answers
 * prompt i. The upstream reports one usage for the whole call, so the items carry none and are
 * metered by the model's tokenizer.
 */
export async function generateCompletionsInOneCall(
  client: OpenAI,
  requests: readonly GenerationRequest[],
  providerName: string,
): Promise<Array<Omit<GenerationResult, 'latencyMs'>>> {
  const [first] = requests;
  if (!first) return [];
  const completion = await client.completions.create(
    {
      model: first.model.upstreamModel,
      prompt: requests.map((request) => request.prompt),
      max_tokens: first.maxTokens,
      temperature: first.temperature,
      top_p: first.topP,
      ...seedOf(first),
      ...stopOf(first),
    },
    { signal: first.signal },
  );
  const byIndex = new Map((completion.choices ?? []).map((choice) => [choice.index, choice]));
  return requests.map((request, index) => {
    const choice = byIndex.get(index);
    if (!choice || typeof choice.text !== 'string') throw noChoice(providerName);
    return {
      text: choice.text,
      finishReason: mapOpenAIFinishReason(choice.finish_reason),
      upstreamModel: completion.model ?? request.model.upstreamModel,
      upstreamRequestId: completion._request_id ?? undefined,
    };
  });
}

export function mapUsage(usage: SdkUsage | null | undefined): TokenUsage | undefined {
  if (!usage || typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') {
    return undefined;
  }
  return { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens };
}

export const seedOf = (request: GenerationRequest): { seed?: number } => (request.seed === undefined ? {} : { seed: request.seed });

export const stopOf = (request: GenerationRequest): { stop?: string[] } =>
  request.stop && request.stop.length > 0 ? { stop: [...request.stop] } : {};

/** A conversation goes up as its messages; a plain prompt as one user message. */
export const chatMessagesOf = (request: GenerationRequest): ChatMessage[] =>
  request.messages ? request.messages.map(({ role, content }) => ({ role, content })) : [{ role: 'user', content: request.prompt }];

export function noChoice(providerName: string): ProviderError {
  return new ProviderError(`${providerName} answered without a completion choice`, { kind: 'bad_response' });
}
