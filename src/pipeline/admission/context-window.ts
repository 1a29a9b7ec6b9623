import { validationError } from '../../errors/api-error';
import type { ChatMessage, ModelDescriptor, TokenizerName } from '../../providers/provider';
import type { ResolvedModel } from '../../providers/registry';
import type { GenerationParameters } from '../../services/generation-parameters';
import { toApiError } from '../routing/upstream-errors';
import { chatFramingTokens, countPromptTokens } from '../token-counter';

/** A prompt admitted to a model; `inputTokens` is known when it had to be counted. */
export interface AdmittedPrompt {
  readonly prompt: string;
  readonly inputTokens: number | undefined;
}

/**
 * Refuses prompts the model's context cannot hold with max_tokens on top. Counting needs the
 * tokenizer (its first load blocks for ~0.5 s and holds ~50 MB), so it runs only when the prompt
 * might not fit: no BPE token is shorter than a byte, so the byte length bounds the count.
 * Budget reservation (step 3 of the roadmap) joins this step.
 */
export async function admitPrompt(
  { model, provider }: ResolvedModel,
  prompt: string,
  field: string,
  parameters: GenerationParameters,
  messages?: readonly ChatMessage[],
): Promise<AdmittedPrompt> {
  const context = model.contextLength;
  const countsItself = model.tokenizer === 'model' && provider.countPromptTokens !== undefined;
  if (context === undefined && !countsItself) return { prompt, inputTokens: undefined };
  const upperBound = Buffer.byteLength(prompt, 'utf8') + (model.api === 'chat' ? chatFramingTokens : 0);
  if (!countsItself && context !== undefined && upperBound + parameters.maxTokens <= context) {
    return { prompt, inputTokens: undefined };
  }
  let inputTokens: number;
  try {
    inputTokens =
      countsItself && provider.countPromptTokens
        ? await provider.countPromptTokens(model, prompt, messages)
        : countPromptTokens(prompt, model.api, familyTokenizer(model));
  } catch (error) {
    // Counting with the model's own tokenizer loads the model: a file that cannot load is unavailable.
    throw toApiError(error, model);
  }
  if (context !== undefined) checkContextWindow(model, field, inputTokens, parameters.maxTokens, context);
  return { prompt, inputTokens };
}

function checkContextWindow(model: ModelDescriptor, field: string, inputTokens: number, maxTokens: number, context: number): void {
  const room = context - inputTokens;
  if (room < 1) {
    throw validationError(
      `${field} is too long for model "${model.id}"`,
      `${field} uses about ${inputTokens} tokens; the model's context_length is ${context}`,
    );
  }
  if (maxTokens > room) {
    throw validationError(
      `max_tokens is too large for model "${model.id}"`,
      `max_tokens must be at most ${room}: context_length ${context} minus about ${inputTokens} ${field} tokens`,
    );
  }
}

// A provider that counts with the model's own tokenizer always reports usage; this is only a fallback.
export const familyTokenizer = (model: ModelDescriptor): TokenizerName => (model.tokenizer === 'model' ? 'cl100k_base' : model.tokenizer);

/** The prompt's input tokens: admission's count, or the model family's tokenizer when admission had no need to count. */
export const inputTokensOf = (model: ModelDescriptor, admitted: AdmittedPrompt): number =>
  admitted.inputTokens ?? countPromptTokens(admitted.prompt, model.api, familyTokenizer(model));
