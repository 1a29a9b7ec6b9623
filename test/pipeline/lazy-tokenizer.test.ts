import { loadedTokenizers } from '../../src/pipeline/token-counter';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type RunningGateway } from '../support/start-gateway';

// Its own file: jest gives each test file a fresh module registry, so no other test has loaded a tokenizer.
describe('token counting on the request path', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    gateway = await startGateway({ env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url } });
  });
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  const generate = (prompt: string) =>
    gateway.graphql('mutation ($prompt: String!) { generate(prompt: $prompt, model_id: "gpt-4o-mini") { metrics { input_tokens } } }', {
      prompt,
    });

  it('loads no tokenizer for a prompt that surely fits the context when the upstream reports usage', async () => {
    const answer = await generate('a short prompt');

    expect(answer.body.data.generate.metrics.input_tokens).toBe(3 + 3);
    expect(loadedTokenizers()).toEqual([]);
  });

  it('counts with the model family tokenizer when the upstream reports no usage', async () => {
    fake.queueBehaviours({ kind: 'no-usage' });
    const answer = await generate('a short prompt');

    // o200k_base: "a short prompt" is 3 tokens, plus 7 for the chat framing of one user message.
    expect(answer.body.data.generate.metrics.input_tokens).toBe(10);
    expect(loadedTokenizers()).toEqual(['o200k_base']);
  });
});
