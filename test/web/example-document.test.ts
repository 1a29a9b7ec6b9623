import { buildSchema, parse, validate } from 'graphql';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { exampleDocument } from '../../src/web/web-pages';

/** GraphiQL opens on this document: every operation in it must run against the served schema. */
describe("GraphiQL's example document", () => {
  const schema = buildSchema(
    readFileSync(path.resolve(__dirname, '..', '..', 'schema', 'schema.graphql'), 'utf8').replace(/^extend schema @link[^\n]*\n/m, ''),
    {
      assumeValidSDL: true,
    },
  );

  it('validates against the schema, and shows spend, generation, rating and the feedback summary', () => {
    const document = parse(exampleDocument);
    expect(validate(schema, document).map((error) => error.message)).toEqual([]);
    const operations = document.definitions.flatMap((definition) =>
      'name' in definition && definition.name ? [definition.name.value] : [],
    );
    expect(operations).toEqual(expect.arrayContaining(['Overview', 'Spend', 'GenerateWithDemoModel', 'RateAnswer', 'Feedback']));
  });
});
