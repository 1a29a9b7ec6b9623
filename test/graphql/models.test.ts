import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../src/config';
import { GenerateDocument, HealthDocument, ModelDocument, ModelsDocument, StatusDocument, type ModelsQuery } from '../generated/graphql';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { freePort, poll } from '../support/polling';

const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

interface DefaultCatalogEntry {
  id: string;
  name: string;
  description: string;
  context_length: number;
  capabilities: string[];
  pricing: { input_per_million: number; output_per_million: number };
}
const defaultCatalog = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'catalog', 'default-models.json'), 'utf8')) as {
  models: DefaultCatalogEntry[];
};

const EXPECTED_DEFAULT_IDS = ['gpt-4', 'gpt-4-turbo', 'gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-3.5-turbo'];
const FINE_TUNE_ID = 'ft:gpt-4o-mini:acme::abc123';

type ListedModel = ModelsQuery['models']['models'][number];

async function listModels(gateway: RunningGateway): Promise<ListedModel[]> {
  const { status, body } = await gateway.execute(ModelsDocument);
  expect(status).toBe(200);
  expect(body.errors).toBeUndefined();
  return body.data!.models.models;
}

const byId = (models: ListedModel[], id: string): ListedModel | undefined => models.find((m) => m.id === id);

describe('models without an OpenAI key', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway.close());

  it('lists every default catalog model as an unavailable commercial OpenAI model, saying the key is missing', async () => {
    const { status, body } = await gateway.execute(ModelsDocument);
    expect(status).toBe(200);
    const { models, count, timestamp } = body.data!.models;
    expect(count).toBe(models.length);
    expect(timestamp).toMatch(isoTimestamp);

    const ids = models.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(EXPECTED_DEFAULT_IDS));
    expect([...ids].sort()).toEqual(defaultCatalog.models.map((m) => m.id).sort());

    for (const entry of defaultCatalog.models) {
      const model = byId(models, entry.id);
      expect(model).toMatchObject({
        id: entry.id,
        name: entry.name,
        description: entry.description,
        type: 'commercial',
        provider: 'openai',
        status: 'unavailable',
        context_length: entry.context_length,
        capabilities: entry.capabilities,
        pricing: entry.pricing,
      });
      expect(model!.status_reason).toContain('OPENAI_API_KEY');
    }
  });

  it('lists no fine-tunes, since the account cannot be asked without a key', async () => {
    const models = await listModels(gateway);
    expect(models.filter((m) => m.type === 'fine-tuned')).toEqual([]);
  });

  it('still describes a catalog model by id, as unavailable', async () => {
    const { status, body } = await gateway.execute(ModelDocument, { model_id: 'gpt-4' });
    expect(status).toBe(200);
    expect(body.data!.model.model).toMatchObject({ id: 'gpt-4', status: 'unavailable', context_length: 8192 });
    expect(body.data!.model.model.status_reason).toContain('OPENAI_API_KEY');
  });
});

describe('models with an OpenAI key', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({ env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url } });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('lists the catalog models as available', async () => {
    const models = await listModels(gateway);
    for (const id of defaultCatalog.models.map((m) => m.id)) {
      expect(byId(models, id)).toMatchObject({ id, type: 'commercial', provider: 'openai', status: 'available', status_reason: null });
    }
  });

  it("lists the account's fine-tune with its base model and the base model's fine-tune price and context", async () => {
    const { body } = await gateway.execute(ModelsDocument);
    const { models, count } = body.data!.models;
    expect(count).toBe(models.length);
    expect(byId(models, FINE_TUNE_ID)).toMatchObject({
      id: FINE_TUNE_ID,
      type: 'fine-tuned',
      provider: 'openai',
      status: 'available',
      base_model: 'gpt-4o-mini',
      context_length: 128000,
      api: 'chat',
      pricing: { input_per_million: 0.3, output_per_million: 1.2 },
    });
    expect(byId(models, FINE_TUNE_ID)!.name).toEqual(expect.any(String));
    // The fake lists gpt-4o-mini too; it stays one commercial entry, not a duplicate.
    expect(models.filter((m) => m.id === 'gpt-4o-mini')).toHaveLength(1);
  });

  it('describes gpt-4o by id with its price', async () => {
    const { status, body } = await gateway.execute(ModelDocument, { model_id: 'gpt-4o' });
    expect(status).toBe(200);
    expect(body.data!.model.timestamp).toMatch(isoTimestamp);
    expect(body.data!.model.model).toMatchObject({
      id: 'gpt-4o',
      name: 'GPT-4o',
      type: 'commercial',
      provider: 'openai',
      status: 'available',
      context_length: 128000,
      pricing: { input_per_million: 2.5, output_per_million: 10 },
    });
  });

  it('answers model_not_found, with null data, in an HTTP 200 execution result for an unknown id', async () => {
    const { status, body } = await gateway.execute(ModelDocument, { model_id: 'no-such-model' });
    expect(status).toBe(200);
    expect(body.data).toBeNull();
    expect(body.errors?.[0]?.extensions?.code).toBe('model_not_found');
    expect(body.errors?.[0]?.message).toContain('no-such-model');
  });
});

describe('models of an OpenAI-compatible endpoint', () => {
  let compatible: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    compatible = await startFakeUpstream({ models: ['acme-support-ft', 'acme-completion-ft'] });
    gateway = await startGateway({
      catalog: {
        endpoints: [{ name: 'vllm', base_url: compatible.url }],
        models: [{ id: 'acme-completion-ft', provider: 'vllm', api: 'completion', name: 'ACME completion' }],
      },
    });
  });
  beforeEach(() => compatible.reset());
  afterAll(async () => {
    await gateway.close();
    await compatible.close();
  });

  it("lists the endpoint's models as available fine-tunes of that provider", async () => {
    const models = await listModels(gateway);
    expect(byId(models, 'acme-support-ft')).toMatchObject({
      id: 'acme-support-ft',
      name: 'acme-support-ft',
      provider: 'vllm',
      type: 'fine-tuned',
      status: 'available',
      api: 'chat',
    });
    expect(byId(models, 'acme-completion-ft')).toMatchObject({
      provider: 'vllm',
      type: 'fine-tuned',
      status: 'available',
    });
  });

  it("takes a model's name and api from its catalog entry", async () => {
    const { status, body } = await gateway.execute(ModelDocument, { model_id: 'acme-completion-ft' });
    expect(status).toBe(200);
    expect(body.data!.model.model).toMatchObject({ id: 'acme-completion-ft', name: 'ACME completion', api: 'completion' });
  });

  it('generates with a completion model through the endpoint’s /v1/completions', async () => {
    const prompt = 'complete this sentence';
    const { status, body } = await gateway.execute(GenerateDocument, { prompt, model_id: 'acme-completion-ft', max_tokens: 20 });
    expect(status).toBe(200);
    expect(body.data!.generate).toMatchObject({
      text: expectedReply(prompt, 20).text,
      model_id: 'acme-completion-ft',
      metadata: { provider: 'vllm', upstream_model: 'acme-completion-ft' },
    });
    const generation = compatible.requests.filter((r) => r.method === 'POST');
    expect(generation).toHaveLength(1);
    expect(generation[0]).toMatchObject({ path: '/v1/completions', body: { model: 'acme-completion-ft', prompt, max_tokens: 20 } });
  });

  it('generates with a chat model through the endpoint’s /v1/chat/completions', async () => {
    const prompt = 'how do I reset my password';
    const { status, body } = await gateway.execute(GenerateDocument, { prompt, model_id: 'acme-support-ft', max_tokens: 20 });
    expect(status).toBe(200);
    expect(body.data!.generate).toMatchObject({
      text: expectedReply(prompt, 20).text,
      model_id: 'acme-support-ft',
      metadata: { provider: 'vllm', upstream_model: 'acme-support-ft' },
    });
    const generation = compatible.requests.filter((r) => r.method === 'POST');
    expect(generation).toHaveLength(1);
    expect(generation[0]).toMatchObject({ path: '/v1/chat/completions', body: { model: 'acme-support-ft', max_tokens: 20 } });
    expect(generation[0]!.body.messages).toEqual([{ role: 'user', content: prompt }]);
  });
});

describe('an OpenAI-compatible endpoint that needs a key', () => {
  const key = 'vllm-secret-key';
  let secured: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    secured = await startFakeUpstream({ models: ['secure-ft'], requiredApiKey: key });
    gateway = await startGateway({
      env: { VLLM_KEY: key },
      catalog: { endpoints: [{ name: 'secured', base_url: secured.url, api_key_env: 'VLLM_KEY' }] },
    });
  });
  beforeEach(() => secured.reset());
  afterAll(async () => {
    await gateway.close();
    await secured.close();
  });

  it('sends the key from the named environment variable, so its models are listed and generate', async () => {
    const models = await listModels(gateway);
    expect(byId(models, 'secure-ft')).toMatchObject({ provider: 'secured', type: 'fine-tuned', status: 'available' });

    const prompt = 'a guarded question';
    const { status, body } = await gateway.execute(GenerateDocument, { prompt, model_id: 'secure-ft', max_tokens: 10 });
    expect(status).toBe(200);
    expect(body.data!.generate.text).toBe(expectedReply(prompt, 10).text);
    const generation = secured.requests.filter((r) => r.method === 'POST');
    expect(generation).toHaveLength(1);
    expect(generation[0]!.headers.authorization).toBe(`Bearer ${key}`);
  });

  it('never shows the key in models or status', async () => {
    const models = await gateway.execute(ModelsDocument);
    const status = await gateway.execute(StatusDocument);
    expect(JSON.stringify(models.body)).not.toContain(key);
    expect(JSON.stringify(status.body)).not.toContain(key);
  });
});

describe('an OpenAI-compatible endpoint that is unreachable', () => {
  const configuredIds = ['offline-chat', 'offline-completion'];
  let port: number;
  let gateway: RunningGateway;
  let revived: FakeUpstream | undefined;

  beforeAll(async () => {
    port = await freePort();
    gateway = await startGateway({
      env: { DISCOVERY_INTERVAL_MS: '200', DISCOVERY_TIMEOUT_MS: '1000' },
      catalog: {
        endpoints: [{ name: 'offline', base_url: `http://127.0.0.1:${port}/v1` }],
        models: [
          { id: 'offline-chat', provider: 'offline', name: 'Offline chat' },
          { id: 'offline-completion', provider: 'offline', name: 'Offline completion', api: 'completion' },
        ],
      },
    });
  });
  beforeEach(() => revived?.reset());
  afterAll(async () => {
    await gateway.close();
    await revived?.close();
  });

  it('starts and answers health', async () => {
    const { status, body } = await gateway.execute(HealthDocument);
    expect(status).toBe(200);
    expect(body.data!.health.status).toBe('healthy');
  });

  it('lists the catalog-configured models of the endpoint as unavailable, with a reason', async () => {
    const models = await listModels(gateway);
    for (const id of configuredIds) {
      const model = byId(models, id);
      expect(model).toMatchObject({ id, provider: 'offline', status: 'unavailable' });
      expect(typeof model!.status_reason).toBe('string');
      expect(model!.status_reason!.trim().length).toBeGreaterThan(0);
    }
    expect(byId(models, 'offline-chat')!.name).toBe('Offline chat');
  });

  it('reports status degraded with the endpoint down', async () => {
    const { body } = await gateway.execute(StatusDocument);
    expect(body.data!.status.status).toBe('degraded');
    expect(body.data!.status.providers).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'offline', state: 'down' })]));
  });

  it('refuses generation with such a model with model_unavailable, in an HTTP 200 execution result', async () => {
    const { status, body } = await gateway.execute(GenerateDocument, { prompt: 'anyone there?', model_id: 'offline-chat' });
    expect(status).toBe(200);
    expect(body.data).toBeNull();
    expect(body.errors?.[0]?.extensions?.code).toBe('model_unavailable');
  });

  it('notices the endpoint once it comes up, lists its models as available, and becomes healthy', async () => {
    revived = await startFakeUpstream({ models: configuredIds }, port);

    const models = await poll(
      () => listModels(gateway),
      (list) => configuredIds.every((id) => byId(list, id)?.status === 'available'),
    );
    for (const id of configuredIds) {
      expect(byId(models, id)).toMatchObject({ id, provider: 'offline', status: 'available', status_reason: null });
    }
    expect(byId(models, 'offline-completion')).toMatchObject({ name: 'Offline completion', api: 'completion' });

    const status = await poll(
      async () => (await gateway.execute(StatusDocument)).body.data!.status,
      (s) => s.status === 'healthy',
    );
    expect(status.status).toBe('healthy');
    expect(status.providers).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'offline', state: 'up' })]));

    const prompt = 'back online now';
    const generated = await gateway.execute(GenerateDocument, { prompt, model_id: 'offline-chat', max_tokens: 10 });
    expect(generated.status).toBe(200);
    expect(generated.body.data!.generate.text).toBe(expectedReply(prompt, 10).text);
  });
});

describe('catalog validation', () => {
  it('refuses to start with a ConfigError when a catalog model names an unknown provider', async () => {
    const starting = startGateway({ catalog: { models: [{ id: 'stray-model', provider: 'nowhere' }] } });
    await expect(starting).rejects.toThrow(ConfigError);
    await expect(starting).rejects.toThrow(/nowhere/);
  });

  it('refuses to start with a ConfigError when an endpoint takes a built-in provider name', async () => {
    const starting = startGateway({ catalog: { endpoints: [{ name: 'openai', base_url: 'http://127.0.0.1:1/v1' }] } });
    await expect(starting).rejects.toThrow(ConfigError);
  });
});
