import { countTokens as countO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { computeCost, sumCosts } from '../../src/pipeline/cost';
import { countPromptTokens, countTextTokens } from '../../src/pipeline/token-counter';

describe('token counting', () => {
  it('counts with the model family tokenizer and adds the chat framing for chat models', () => {
    const prompt = 'Explain the difference between a process and a thread.';
    expect(countTextTokens(prompt, 'o200k_base')).toBe(countO200k(prompt));
    expect(countPromptTokens(prompt, 'chat', 'o200k_base')).toBe(countO200k(prompt) + 7);
    expect(countPromptTokens(prompt, 'completion', 'o200k_base')).toBe(countO200k(prompt));
  });

  it('counts special-token text in user input as text instead of throwing', () => {
    expect(countTextTokens('hi <|endoftext|> there', 'cl100k_base')).toBeGreaterThan(3);
    expect(countTextTokens('<|im_start|>system', 'o200k_base')).toBeGreaterThan(1);
  });

  it('gives different counts for different encodings of the same text', () => {
    const text = 'こんにちは世界、これはトークナイザーのテストです。';
    expect(countTextTokens(text, 'cl100k_base')).not.toBe(countTextTokens(text, 'o200k_base'));
  });
});

describe('cost', () => {
  it('prices input and output tokens per million', () => {
    expect(computeCost({ inputPerMillion: 2.5, outputPerMillion: 10 }, 1000, 500)).toEqual({
      input: 0.0025,
      output: 0.005,
      total: 0.0075,
    });
  });

  it('is zero for unpriced models', () => {
    expect(computeCost(undefined, 1000, 1000)).toEqual({ input: 0, output: 0, total: 0 });
  });

  it('sums without floating-point noise', () => {
    const one = computeCost({ inputPerMillion: 0.15, outputPerMillion: 0.6 }, 7, 3);
    expect(sumCosts([one, one, one])).toEqual({ input: 0.00000315, output: 0.0000054, total: 0.00000855 });
  });
});
