import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { composeServices } from '@apollo/composition';
import { ApolloGateway, IntrospectAndCompose } from '@apollo/gateway';
import { parse } from 'graphql';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { startTeamsSubgraph, teamsTypeDefs } from '../support/teams-subgraph';

describe('LLMOP in a supergraph', () => {
  let fake: FakeUpstream;
  let llmop: RunningGateway;
  let teams: { url: string; stop: () => Promise<void> };
  let router: ApolloServer;
  let routerUrl: string;

  const query = async (document: string): Promise<{ data?: any; errors?: unknown[] }> => {
    const response = await fetch(routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: document }),
    });
    return (await response.json()) as { data?: any; errors?: unknown[] };
  };

  beforeAll(async () => {
    fake = await startFakeUpstream();
    llmop = await startGateway({ env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url } });
    teams = await startTeamsSubgraph();
    router = new ApolloServer({
      gateway: new ApolloGateway({
        supergraphSdl: new IntrospectAndCompose({
          subgraphs: [
            { name: 'llmop', url: `${llmop.url}/graphql` },
            { name: 'teams', url: teams.url },
          ],
        }),
      }),
    });
    routerUrl = (await startStandaloneServer(router, { listen: { port: 0, host: '127.0.0.1' } })).url;
  });

  afterAll(async () => {
    await router.stop();
    await teams.stop();
    await llmop.close();
    await fake.close();
  });

  it('serves its SDL with federation directives through _service', async () => {
    const { body } = await llmop.graphql('{ _service { sdl } }');
    expect(body.data._service.sdl).toContain('@link(url: "https://specs.apollo.dev/federation/v2.7"');
    expect(body.data._service.sdl).toMatch(/type Model\s+@key\(fields: "id"\)/);
  });

  it('resolves Model entities by key, and null for an id it does not know', async () => {
    const { body } = await llmop.graphql(
      `query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Model { id name context_length } } }`,
      { representations: [{ __typename: 'Model', id: 'gpt-4o' }, { __typename: 'Model', id: 'no-such-model' }] },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data._entities).toEqual([{ id: 'gpt-4o', name: 'GPT-4o', context_length: 128000 }, null]);
  });

  it('composes with another subgraph without errors', async () => {
    const { body } = await llmop.graphql('{ _service { sdl } }');
    const result = composeServices([
      { name: 'llmop', url: `${llmop.url}/graphql`, typeDefs: parse(body.data._service.sdl) },
      { name: 'teams', url: teams.url, typeDefs: teamsTypeDefs },
    ]);
    expect(result.errors).toBeUndefined();
    expect(result.supergraphSdl).toContain('owner_team');
  });

  it('answers a query that starts in LLMOP and needs the teams subgraph', async () => {
    const { data, errors } = await query('{ models { models { id provider owner_team { name } } } }');
    expect(errors).toBeUndefined();
    const byId = new Map<string, any>(data.models.models.map((model: any) => [model.id, model]));
    expect(byId.get('gpt-4o-mini')).toEqual({ id: 'gpt-4o-mini', provider: 'openai', owner_team: { name: 'support-platform' } });
    expect(byId.get('gpt-4.1')?.owner_team).toEqual({ name: 'research' });
    expect(byId.get('gpt-3.5-turbo')?.owner_team).toBeNull();
  });

  it('answers a query that starts in the teams subgraph and needs LLMOP entities', async () => {
    const { data, errors } = await query('{ teams { name models { id name status context_length pricing { input_per_million } } } }');
    expect(errors).toBeUndefined();
    expect(data.teams).toEqual([
      {
        name: 'support-platform',
        models: [
          { id: 'gpt-4o-mini', name: 'GPT-4o mini', status: 'available', context_length: 128000, pricing: { input_per_million: 0.15 } },
          { id: 'gpt-4o', name: 'GPT-4o', status: 'available', context_length: 128000, pricing: { input_per_million: 2.5 } },
        ],
      },
      { name: 'research', models: [{ id: 'gpt-4.1', name: 'GPT-4.1', status: 'available', context_length: 1047576, pricing: { input_per_million: 2 } }] },
    ]);
  });

  it('runs a generate mutation through the gateway', async () => {
    const { data, errors } = await query(
      'mutation { generate(prompt: "hello through the router", model_id: "gpt-4o-mini", max_tokens: 10) { text model_id metrics { total_tokens } metadata { provider } } }',
    );
    expect(errors).toBeUndefined();
    const reply = expectedReply('hello through the router', 10);
    expect(data.generate).toEqual({
      text: reply.text,
      model_id: 'gpt-4o-mini',
      metrics: { total_tokens: reply.promptTokens + reply.completionTokens },
      metadata: { provider: 'openai' },
    });
  });
});
