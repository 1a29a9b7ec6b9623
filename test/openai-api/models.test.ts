/**
 * GET /v1/models and GET /v1/models/{id} as the official `openai` SDK reads them (issue 15): the
 * models that can serve, in OpenAI's list shape, each owned by the provider that serves it; any
 * known model by id, unavailable ones included; 404 model_not_found in OpenAI's shape otherwise.
 */
import OpenAI, { type APIError } from 'openai';
import { type FakeUpstream, realmSafeFetch, startFakeUpstream } from '../support/fake-openai-upstream';
import { freePort } from '../support/polling';
import { type RunningGateway, startGateway } from '../support/start-gateway';

const KEY = 'models-test-key-0123456789';
const CHAT_MODEL = 'tiny-chat';
const SLASHED_MODEL = 'acme/tiny-instruct';
const FINE_TUNE = 'ft:tiny-chat:acme::abc123';
const OFFLINE_MODEL = 'offline-chat';

let fake: FakeUpstream;
let gateway: RunningGateway;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeUpstream({ models: [CHAT_MODEL, SLASHED_MODEL, FINE_TUNE] });
  const deadPort = await freePort();
  gateway = await startGateway({
    env: { API_KEYS: KEY },
    catalog: {
      endpoints: [
        { name: 'vllm', base_url: fake.url },
        { name: 'offline', base_url: `http://127.0.0.1:${deadPort}/v1` },
      ],
      models: [
        { id: CHAT_MODEL, provider: 'vllm', api: 'chat' },
        { id: SLASHED_MODEL, provider: 'vllm', api: 'chat' },
        { id: FINE_TUNE, provider: 'vllm', api: 'chat' },
        { id: OFFLINE_MODEL, provider: 'offline', api: 'chat' },
      ],
    },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: KEY, maxRetries: 0, fetch: realmSafeFetch });
});

afterAll(async () => {
  await gateway?.close();
  await fake?.close();
});

/** What /api/v1/models says about every model, for comparison. */
async function restModels(): Promise<Array<{ id: string; provider: string; status: string }>> {
  const response = await fetch(`${gateway.url}/api/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
  return ((await response.json()) as { models: Array<{ id: string; provider: string; status: string }> }).models;
}

describe('GET /v1/models', () => {
  it('lists every model that can serve, in OpenAI list shape, owned by its provider', async () => {
    const page = await client.models.list();
    const listed = page.data;
    const available = (await restModels()).filter((model) => model.status === 'available');
    expect(listed.map((model) => model.id).sort()).toEqual(available.map((model) => model.id).sort());
    expect(listed.map((model) => model.id)).toEqual(expect.arrayContaining([CHAT_MODEL, SLASHED_MODEL, FINE_TUNE]));
    for (const model of listed) {
      expect(model).toEqual({ id: model.id, object: 'model', created: expect.any(Number), owned_by: expect.any(String) });
      expect(Number.isInteger(model.created)).toBe(true);
    }
    expect(listed.find((model) => model.id === CHAT_MODEL)!.owned_by).toBe('vllm');
  });

  it('answers the raw list as {object: "list", data: [...]}', async () => {
    const response = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('x-request-id')).toEqual(expect.any(String));
    const body = (await response.json()) as { object: string; data: unknown[] };
    expect(body.object).toBe('list');
    expect(Array.isArray(body.data)).toBe(true);
  });

  it('leaves out models that cannot serve (an unreachable endpoint, the OpenAI models without a key)', async () => {
    const unavailable = (await restModels()).filter((model) => model.status === 'unavailable').map((model) => model.id);
    expect(unavailable).toContain(OFFLINE_MODEL);
    const listed = (await client.models.list()).data.map((model) => model.id);
    for (const id of unavailable) expect(listed).not.toContain(id);
  });
});

describe('GET /v1/models/{id}', () => {
  it('describes a model by id', async () => {
    expect(await client.models.retrieve(CHAT_MODEL)).toEqual({
      id: CHAT_MODEL,
      object: 'model',
      created: expect.any(Number),
      owned_by: 'vllm',
    });
  });

  it('finds ids that hold slashes and colons', async () => {
    expect((await client.models.retrieve(SLASHED_MODEL)).id).toBe(SLASHED_MODEL);
    const raw = await fetch(`${gateway.url}/v1/models/${SLASHED_MODEL}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(((await raw.json()) as { id: string }).id).toBe(SLASHED_MODEL);
    expect((await client.models.retrieve(FINE_TUNE)).id).toBe(FINE_TUNE);
  });

  it('still describes a known model that cannot serve now', async () => {
    expect(await client.models.retrieve(OFFLINE_MODEL)).toMatchObject({ id: OFFLINE_MODEL, object: 'model', owned_by: 'offline' });
  });

  it('returns 404 model_not_found in OpenAI shape for an unknown model', async () => {
    const error = await client.models.retrieve('no-such-model').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', type: 'invalid_request_error', param: 'model' });
    expect((error as APIError).message).toContain('no-such-model');
  });
});

describe('/v1 outside its routes', () => {
  it('returns 401 in OpenAI shape for a bad key, without echoing it', async () => {
    const stranger = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'sk-not-a-key-secret', maxRetries: 0, fetch: realmSafeFetch });
    const error = await stranger.models.list().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'authentication_error' });
    expect(JSON.stringify((error as APIError).error)).not.toContain('sk-not-a-key-secret');
  });

  it('returns 401 in OpenAI shape without a key', async () => {
    const response = await fetch(`${gateway.url}/v1/models`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await response.json()).toEqual({
      error: { message: expect.stringContaining('API key'), type: 'authentication_error', param: null, code: 'invalid_api_key' },
    });
  });

  it('returns 404 in OpenAI shape for an unknown path, and 405 for a wrong method', async () => {
    const headers = { authorization: `Bearer ${KEY}` };
    const unknown = await fetch(`${gateway.url}/v1/embeddings`, { method: 'POST', headers, body: '{}' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { message: 'Invalid URL (POST /v1/embeddings)', type: 'invalid_request_error', param: null, code: 'not_found' },
    });
    const wrongMethod = await fetch(`${gateway.url}/v1/models`, { method: 'DELETE', headers });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET');
    expect(((await wrongMethod.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
  });
});
