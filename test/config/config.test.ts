import { ConfigError, loadConfig } from '../../src/config';
import { writeTempCatalog } from '../support/start-gateway';

const catalogNaming = (variable: string) =>
  writeTempCatalog({ endpoints: [{ name: 'vllm', base_url: 'http://127.0.0.1:9/v1', api_key_env: variable }] });

describe('keys of catalog endpoints', () => {
  it('reads only the variables the catalog names, keeping no copy of the environment', () => {
    const config = loadConfig({ MODEL_CATALOG: catalogNaming('VLLM_KEY'), VLLM_KEY: 'vllm-secret', UNRELATED_SECRET: 'do-not-keep' });

    expect(config.endpointKeys).toEqual({ VLLM_KEY: 'vllm-secret' });
    expect(JSON.stringify(config)).not.toContain('do-not-keep');
  });

  it.each(['API_KEYS', 'REDIS_URL', 'OPENAI_API_KEY'])(
    "refuses a catalog whose endpoint would send LLMOP's own %s upstream",
    (variable) => {
      const load = () => loadConfig({ MODEL_CATALOG: catalogNaming(variable), [variable]: 'redis://127.0.0.1:6379' });

      expect(load).toThrow(ConfigError);
      expect(load).toThrow(`names ${variable} as its api_key_env, which is one of LLMOP's own settings`);
    },
  );
});

describe('rate-limit settings', () => {
  it('refuses a limit and window whose product the limiter could not count exactly', () => {
    expect(() => loadConfig({ RATE_LIMIT_DEFAULT: String(10 ** 12), RATE_LIMIT_WINDOW_MS: String(10 ** 5) })).toThrow(
      'RATE_LIMIT_DEFAULT × RATE_LIMIT_WINDOW_MS must be at most 2^53 - 1',
    );
    expect(loadConfig({ RATE_LIMIT_DEFAULT: '1000000', RATE_LIMIT_WINDOW_MS: '60000' }).rateLimits.other).toBe(1_000_000);
  });
});
