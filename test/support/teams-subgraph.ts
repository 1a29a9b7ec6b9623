import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

/**
 * A second, real federation subgraph for the tests: it owns teams and extends LLMOP's `Model`
 * entity by its key with the team that owns each model.
 */
export const teamsTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])

  type Team {
    name: String!
    models: [Model!]!
  }

  type Model @key(fields: "id") {
    id: String!
    owner_team: Team
  }

  type Query {
    teams: [Team!]!
  }
`);

const modelsByTeam: Record<string, string[]> = {
  'support-platform': ['gpt-4o-mini', 'gpt-4o'],
  research: ['gpt-4.1'],
};

const teamOf = (modelId: string): { name: string } | null => {
  const name = Object.keys(modelsByTeam).find((team) => modelsByTeam[team]!.includes(modelId));
  return name ? { name } : null;
};

export async function startTeamsSubgraph(): Promise<{ url: string; stop: () => Promise<void> }> {
  const schema = buildSubgraphSchema({
    typeDefs: teamsTypeDefs,
    resolvers: {
      Query: { teams: () => Object.keys(modelsByTeam).map((name) => ({ name })) },
      Team: { models: (team: { name: string }) => modelsByTeam[team.name]!.map((id) => ({ id })) },
      Model: {
        __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
        owner_team: (model: { id: string }) => teamOf(model.id),
      },
    },
  });
  const server = new ApolloServer({ schema });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return { url, stop: () => server.stop() };
}
