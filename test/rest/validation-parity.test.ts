import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { expectToMatchContract, rest } from '../support/contract';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const MODEL = 'gpt-4o-mini';

// Variables named as the arguments, as SOFA names them for the REST operations.
const GENERATE = `mutation Generate($prompt: String!, $model_id: String!, $max_tokens: Int, $temperature: Float, $top_p: Float) {
  generate(prompt: $prompt, model_id: $model_id, max_tokens: $max_tokens, temperature: $temperature, top_p: $top_p) { text }
}`;
const GENERATE_BATCH = `mutation GenerateBatch($prompts: [String!]!, $model_id: String!, $max_tokens: Int, $temperature: Float, $top_p: Float) {
  generate_batch(prompts: $prompts, model_id: $model_id, max_tokens: $max_tokens, temperature: $temperature, top_p: $top_p) { model_id }
}`;

interface Refusal {
  readonly code: unknown;
  readonly message: unknown;
  readonly details: unknown;
}

type Case = readonly [name: string, surface: 'generate' | 'generate_batch', parameters: Record<string, unknown>, mentions: string];

const cases: readonly Case[] = [
  ['max_tokens 0', 'generate', { prompt: 'hi', max_tokens: 0 }, 'max_tokens'],
  ['max_tokens 5000', 'generate', { prompt: 'hi', max_tokens: 5000 }, 'max_tokens'],
  ['max_tokens 1.5', 'generate', { prompt: 'hi', max_tokens: 1.5 }, 'max_tokens'],
  ['temperature -1', 'generate', { prompt: 'hi', temperature: -1 }, 'temperature'],
  ['temperature 3', 'generate', { prompt: 'hi', temperature: 3 }, 'temperature'],
  ['top_p 2', 'generate', { prompt: 'hi', top_p: 2 }, 'top_p'],
  ['an empty prompt', 'generate', { prompt: '' }, 'prompt'],
  ['a prompt of 10,001 characters', 'generate', { prompt: 'a'.repeat(10_001) }, 'prompt'],
  ['a prompt that is a number', 'generate', { prompt: 123 }, 'prompt'],
  ['a missing prompt', 'generate', {}, 'prompt'],
  ['an empty prompts list', 'generate_batch', { prompts: [] }, 'prompts'],
  ['11 prompts', 'generate_batch', { prompts: Array.from({ length: 11 }, (_, index) => `prompt ${index}`) }, 'prompts'],
  ['a batch prompt that is a number', 'generate_batch', { prompts: ['fine', 42] }, 'prompts[1]'],
  ['an empty batch prompt', 'generate_batch', { prompts: ['fine', ''] }, 'prompts[1]'],
  ['max_tokens 5000 in a batch', 'generate_batch', { prompts: ['hi'], max_tokens: 5000 }, 'max_tokens'],
];

describe('generation parameters refused the same way on REST and GraphQL', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({ env: { OPENAI_API_KEY: 'sk-parity-test', OPENAI_BASE_URL: fake.url } });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it.each(cases)('gives %s the same code, message and details on both surfaces', async (_name, operation, parameters, mentions) => {
    const variables = { model_id: MODEL, ...parameters };
    const path = operation === 'generate' ? '/generate' : '/generate/batch';
    const fromRest = await rest(gateway, 'POST', path, variables);
    expectToMatchContract(fromRest, path, 'post');
    expect(fromRest.status).toBe(400);
    const restRefusal: Refusal = { code: fromRest.body.error, message: fromRest.body.message, details: fromRest.body.details };

    // GraphQL's HTTP status is not compared: execution errors may be answered with 200.
    const fromGraphQL = await gateway.graphql(operation === 'generate' ? GENERATE : GENERATE_BATCH, variables);
    expect(fromGraphQL.body.errors).toHaveLength(1);
    const [error] = fromGraphQL.body.errors!;
    const graphqlRefusal: Refusal = { code: error!.extensions?.code, message: error!.message, details: error!.extensions?.details };

    expect(restRefusal).toEqual(graphqlRefusal);
    expect(restRefusal.code).toBe('validation_error');
    expect(`${String(restRefusal.message)} ${String(restRefusal.details ?? '')}`).toContain(mentions);
    expect(fake.requests.filter((request) => request.method === 'POST')).toEqual([]);
  });

  it('names each range violation once, with the field, its bounds and the value given', async () => {
    const refused = await rest(gateway, 'POST', '/generate', { prompt: 'hi', model_id: MODEL, max_tokens: 5000 });
    expect(refused.body).toMatchObject({
      error: 'validation_error',
      message: 'Invalid max_tokens',
      details: 'max_tokens must be between 1 and 2048, got 5000',
    });
  });
});
