import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { composeServices } from '@apollo/composition';
import { ApolloGateway, IntrospectAndCompose } from '@apollo/gateway';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type RunningGateway } from '../support/start-gateway';
import { startTeamsSubgraph, teamsTypeDefs } from '../support/teams-subgraph';

interface RouterAnswer {
  readonly status: number;
  // `any`: tests read deep fields of varied responses without declaring each shape.
  readonly data?: any;
  readonly errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
}

async function queryRouter(routerUrl: string, document: string): Promise<RouterAnswer> {
  const response = await fetch(routerUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: document }),
  });
  return { status: response.status, ...((await response.json()) as Omit<RouterAnswer, 'status'>) };
}

async function startRouter(subgraphs: ReadonlyArray<{ name: string; url: string }>): Promise<{ router: ApolloServer; url: string }> {
  const router = new ApolloServer({
    gateway: new ApolloGateway({ supergraphSdl: new IntrospectAndCompose({ subgraphs: [...subgraphs] }) }),
  });
  const { url } = await startStandaloneServer(router, { listen: { port: 0, host: '127.0.0.1' } });
  return { router, url };
}

describe('LLMOP in a supergraph', () => {
  let fake: FakeUpstream;
  let llmop: RunningGateway;
  let teams: { url: string; stop: () => Promise<void> };
  let router: ApolloServer;
  let routerUrl: string;

  const query = (document: string): Promise<RouterAnswer> => queryRouter(routerUrl, document);

  beforeAll(async () => {
    fake = await startFakeUpstream();
    llmop = await startGateway({ env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url } });
    teams = await startTeamsSubgraph();
    ({ router, url: routerUrl } = await startRouter([
      { name: 'llmop', url: `${llmop.url}/graphql` },
      { name: 'teams', url: teams.url },
    ]));
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
      {
        representations: [
          { __typename: 'Model', id: 'gpt-4o' },
          { __typename: 'Model', id: 'no-such-model' },
        ],
      },
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
      {
        name: 'research',
        models: [{ id: 'gpt-4.1', name: 'GPT-4.1', status: 'available', context_length: 1047576, pricing: { input_per_million: 2 } }],
      },
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

  it('keeps model_not_found, its path and message when the router asks for an unknown model next to fields of both subgraphs', async () => {
    const { status, data, errors } = await query(
      '{ health { status } teams { name } missing: model(model_id: "no-such-model") { model { id } } }',
    );
    expect(status).toBe(200);
    // Had LLMOP answered HTTP 404, the router would report a transport failure without the code.
    expect(errors).toEqual([
      {
        message: 'Model "no-such-model" was not found',
        path: ['missing'],
        extensions: { code: 'model_not_found', details: expect.any(String), serviceName: 'llmop' },
      },
    ]);
    // `model` is non-null in the contract, so GraphQL's null propagation (not a failed fetch) empties data.
    expect(data).toBeNull();
  });
});

describe('LLMOP errors at a nullable position of a supergraph', () => {
  const OTHER_LIMIT = 2;
  let fake: FakeUpstream;
  let llmop: RunningGateway;
  let spotlight: { url: string; stop: () => Promise<void> };
  let router: ApolloServer;
  let routerUrl: string;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    llmop = await startGateway({ env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, RATE_LIMIT_DEFAULT: String(OTHER_LIMIT) } });
    spotlight = await startSpotlightSubgraph();
    ({ router, url: routerUrl } = await startRouter([
      { name: 'llmop', url: `${llmop.url}/graphql` },
      { name: 'spotlight', url: spotlight.url },
    ]));
  });

  afterAll(async () => {
    await router.stop();
    await spotlight.stop();
    await llmop.close();
    await fake.close();
  });

  it('keeps the error code and the sibling fields of both subgraphs when LLMOP refuses an entity fetch', async () => {
    // The router and this test both call from 127.0.0.1: one caller, whose _entities allowance is used up here.
    for (let call = 0; call < OTHER_LIMIT; call++) {
      const { body } = await llmop.graphql('{ _entities(representations: [{ __typename: "Model", id: "gpt-4o" }]) { __typename } }');
      expect(body.errors).toBeUndefined();
    }
    const { status, data, errors } = await queryRouter(routerUrl, '{ health { status } spotlight { title model { id name } } }');
    expect(status).toBe(200);
    expect(data).toEqual({ health: { status: 'healthy' }, spotlight: { title: 'Model of the week', model: null } });
    expect(errors).toEqual([
      expect.objectContaining({
        message: 'Rate limit exceeded for _entities',
        extensions: expect.objectContaining({ code: 'rate_limit_exceeded', serviceName: 'llmop' }),
      }),
    ]);
  });
});

/** A subgraph that features one of LLMOP's models in a nullable field, so an LLMOP error there leaves the rest standing. */
async function startSpotlightSubgraph(): Promise<{ url: string; stop: () => Promise<void> }> {
  const schema = buildSubgraphSchema({
    typeDefs: parse(`
      extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
      type Spotlight { title: String! model: Model }
      type Model @key(fields: "id", resolvable: false) { id: String! }
      type Query { spotlight: Spotlight! }
    `),
    resolvers: { Query: { spotlight: () => ({ title: 'Model of the week', model: { id: 'gpt-4o' } }) } },
  });
  const server = new ApolloServer({ schema });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return { url, stop: () => server.stop() };
}
