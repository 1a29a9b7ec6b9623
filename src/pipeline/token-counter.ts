import type { ModelApi, TokenizerName } from '../providers/provider';

interface Encoding {
  countTokens(text: string, options: { disallowedSpecial: Set<string> }): number;
}

// Loaded on first use: each encoding's ranks cost 50-150 ms and several MB.
const loaders: Record<TokenizerName, () => Encoding> = {
  cl100k_base: () => require('gpt-tokenizer/encoding/cl100k_base') as Encoding,
  o200k_base: () => require('gpt-tokenizer/encoding/o200k_base') as Encoding,
};
const loaded = new Map<TokenizerName, Encoding>();

// User text may contain strings like "<|endoftext|>": count them as text instead of throwing.
const treatSpecialTokensAsText = { disallowedSpecial: new Set<string>() };

/** OpenAI's chat framing for one user message: 3 per message, 1 for the role, 3 to prime the reply. */
export const chatFramingTokens = 7;

function encoding(name: TokenizerName): Encoding {
  let found = loaded.get(name);
  if (!found) {
    found = loaders[name]();
    loaded.set(name, found);
  }
  return found;
}

/** Encodings loaded so far; the first load blocks the event loop, so the pipeline avoids it when it can. */
export const loadedTokenizers = (): TokenizerName[] => [...loaded.keys()];

export function countTextTokens(text: string, tokenizer: TokenizerName): number {
  return encoding(tokenizer).countTokens(text, treatSpecialTokensAsText);
}

/** Tokens the upstream bills for a prompt sent as `api` expects it. */
export function countPromptTokens(prompt: string, api: ModelApi, tokenizer: TokenizerName): number {
  const content = countTextTokens(prompt, tokenizer);
  return api === 'chat' ? content + chatFramingTokens : content;
}
