import type { GenerationResult, ModelDescriptor } from '../providers/provider';
import { type AdmittedPrompt, familyTokenizer, inputTokensOf } from './admission/context-window';
import { computeCost } from './cost';
import type { GenerationMetadata } from './generation-pipeline';
import { countTextTokens } from './token-counter';

export interface TokenCounts {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens: number;
}

/** Token counts from the upstream's usage when it reports it, otherwise from the model family's tokenizer. */
export function meter(
  model: ModelDescriptor,
  admitted: AdmittedPrompt,
  result: GenerationResult,
  requestId: string,
  generationId: string,
): { counts: TokenCounts; metered: Omit<GenerationMetadata, 'attempts'> } {
  const inputTokens = result.usage?.inputTokens ?? inputTokensOf(model, admitted);
  const outputTokens = result.usage?.outputTokens ?? countTextTokens(result.text, familyTokenizer(model));
  return {
    counts: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
    metered: {
      generationId,
      finishReason: result.finishReason,
      provider: model.provider,
      upstreamModel: result.upstreamModel,
      requestId,
      upstreamRequestId: result.upstreamRequestId,
      tokenSource: result.usage ? 'upstream' : 'tokenizer',
      costUsd: computeCost(model.pricing, inputTokens, outputTokens),
    },
  };
}
