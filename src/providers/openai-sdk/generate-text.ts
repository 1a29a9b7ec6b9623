import type OpenAI from 'openai';
import { ProviderError, type GenerationRequest, type GenerationResult, type TokenUsage } from '../provider';
import { mapOpenAIFinishReason } from './map-finish-reason';

/** Which field carries the output limit: OpenAI's current API wants max_completion_tokens, most servers max_tokens. */
export type MaxTokensParameter = 'max_tokens' | 'max_completion_tokens';

interface SdkUsage {
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
      messages: [{ role: 'user', content: request.prompt }],
      [maxTokensParameter]: request.maxTokens,
      temperature: request.temperature,
      top_p: request.topP,
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

function mapUsage(usage: SdkUsage | null | undefined): TokenUsage | undefined {
  if (!usage || typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') {
    return undefined;
  }
  return { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens };
}

function noChoice(providerName: string): ProviderError {
  return new ProviderError(`${providerName} answered without a completion choice`, { kind: 'bad_response' });
}
