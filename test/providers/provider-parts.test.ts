import { ConcurrencyLimit } from '../../src/providers/concurrency-limit';
import { mapOpenAIFinishReason } from '../../src/providers/openai-sdk/map-finish-reason';
import { describeFineTune, type OpenAIModelSettings } from '../../src/providers/openai/openai-provider';

const base = (id: string, inputPerMillion: number): OpenAIModelSettings => ({
  id,
  upstreamModel: id,
  name: id.toUpperCase(),
  type: 'commercial',
  provider: 'openai',
  capabilities: ['text-generation', 'chat'],
  api: 'chat',
  tokenizer: 'o200k_base',
  contextLength: 128000,
  pricing: { inputPerMillion, outputPerMillion: inputPerMillion * 4 },
  fineTunedPricing: { inputPerMillion: inputPerMillion * 2, outputPerMillion: inputPerMillion * 8 },
});

describe('OpenAI fine-tunes', () => {
  it('inherit context, tokenizer and fine-tune price from the longest matching base model', () => {
    const model = describeFineTune('ft:gpt-4o-mini-2024-07-18:acme:support:9xYz', [base('gpt-4o', 2.5), base('gpt-4o-mini', 0.15)]);
    expect(model).toMatchObject({
      id: 'ft:gpt-4o-mini-2024-07-18:acme:support:9xYz',
      type: 'fine-tuned',
      provider: 'openai',
      baseModel: 'gpt-4o-mini-2024-07-18',
      contextLength: 128000,
      pricing: { inputPerMillion: 0.3, outputPerMillion: 1.2 },
    });
    expect(model.name).toContain('support');
  });

  it('are still listed, unpriced, when their base is not in the catalog', () => {
    const model = describeFineTune('ft:davinci-002:acme::abc', [base('gpt-4o', 2.5)]);
    expect(model).toMatchObject({ type: 'fine-tuned', pricing: undefined, contextLength: undefined });
  });
});

describe('finish reasons', () => {
  it.each([
    ['stop', 'stop'],
    ['eos', 'stop'],
    ['length', 'length'],
    ['content_filter', 'content_filter'],
    ['tool_calls', 'tool_calls'],
    ['something_new', 'other'],
    [null, 'other'],
  ])('maps %s to %s', (upstream, expected) => {
    expect(mapOpenAIFinishReason(upstream)).toBe(expected);
  });
});

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` tasks at once and all of them eventually', async () => {
    const limit = new ConcurrencyLimit(2);
    let running = 0;
    let peak = 0;
    const task = async (value: number): Promise<number> => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 10));
      running -= 1;
      return value;
    };
    const results = await Promise.all([1, 2, 3, 4, 5].map((value) => limit.run(() => task(value))));
    expect(results).toEqual([1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
  });

  it('frees its slot when a task fails', async () => {
    const limit = new ConcurrencyLimit(1);
    await expect(limit.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limit.run(() => Promise.resolve('next'))).resolves.toBe('next');
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new ConcurrencyLimit(0)).toThrow('positive integer');
  });
});
