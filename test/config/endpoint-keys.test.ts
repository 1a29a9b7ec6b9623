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

  it.each(['API_KEYS', 'REDIS_URL', 'OPENAI_API_KEY'])('refuses a catalog whose endpoint would send LLMOP\'s own %s upstream', (variable) => {
    const load = () => loadConfig({ MODEL_CATALOG: catalogNaming(variable), [variable]: 'redis://127.0.0.1:6379' });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(`names ${variable} as its api_key_env, which is one of LLMOP's own settings`);
  });
});
