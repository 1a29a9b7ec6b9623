/**
 * Hostile GraphQL over real HTTP: every armor limit answers 400 with a code naming the limit, the
 * query just under each limit still runs, introspection and field suggestions follow INTROSPECTION,
 * CSRF prevention and batching rules hold, oversized bodies get 413, and no answer leaks a stack.
 */
import { Lexer, Source, TokenKind } from 'graphql';
import { startGateway, type RunningGateway } from '../support/start-gateway';

interface RawAnswer {
  status: number;
  contentType: string;
  text: string;
  // `any`: tests read deep fields of varied GraphQL answers.
  body: any;
}

/** A JavaScript stack frame: "at fn (file.ts:1:2)" or "at file.js:1:2". */
const stackFrame = /\bat\s+(\S+\s+\()?[^\s()]+:\d+:\d+\)?/;

/** Every string inside a parsed JSON value, so escaped newlines are seen as newlines. */
function stringsIn(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, into);
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      into.push(key);
      stringsIn(item, into);
    }
  }
  return into;
}

function expectNoStackTrace(answer: RawAnswer): void {
  expect(answer.text).not.toMatch(/\n\s+at /);
  expect(answer.text).not.toMatch(stackFrame);
  expect(answer.text.toLowerCase()).not.toContain('stacktrace');
  for (const text of stringsIn(answer.body)) {
    expect(text).not.toMatch(/\n\s+at /);
    expect(text).not.toMatch(stackFrame);
  }
}

async function send(url: string, init: RequestInit): Promise<RawAnswer> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const answer = { status: response.status, contentType: response.headers.get('content-type') ?? '', text, body };
  expectNoStackTrace(answer);
  return answer;
}

/** POST /graphql with a JSON body. */
const postQuery = (gateway: RunningGateway, query: string, operationName?: string): Promise<RawAnswer> =>
  send(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, operationName }),
  });

/** A refusal: the status, a JSON body with no data, and `code` on the first error. */
function expectRefused(answer: RawAnswer, status: number, code: string): { message: string; details: string } {
  expect(answer.contentType).toMatch(/^application\/(.+\+)?json\b/);
  expect({ status: answer.status, code: answer.body?.errors?.[0]?.extensions?.code }).toEqual({ status, code });
  expect(answer.body.data ?? null).toBeNull();
  for (const error of answer.body.errors as Array<{ extensions?: { code?: unknown } }>) {
    expect(typeof error.extensions?.code).toBe('string');
  }
  const first = answer.body.errors[0] as { message: string; extensions: { details?: unknown } };
  return { message: first.message, details: typeof first.extensions.details === 'string' ? first.extensions.details : '' };
}

function expectAnswered(answer: RawAnswer): any {
  expect(answer.contentType).toMatch(/^application\/(.+\+)?json\b/);
  expect({ status: answer.status, errors: answer.body?.errors }).toEqual({ status: 200, errors: undefined });
  return answer.body.data;
}

/** `count` fields, each a `health` under its own alias. */
const aliasedHealth = (count: number): string =>
  `{ ${Array.from({ length: count }, (_, index) => `h${index}: health { status }`).join(' ')} }`;

/**
 * A document of exactly `tokens` lexical tokens, run as operation `Main`: `query Main { health { status } }`
 * is 8 tokens, each `query Pn { __typename }` 5 more, and up to 4 `__typename`s in Main make up the rest.
 * (Padding with thousands of identical fields instead trips graphql-js's own overlap-check budget.)
 */
function documentOfTokens(tokens: number): string {
  const padding = Math.floor((tokens - 8) / 5);
  const remainder = tokens - 8 - padding * 5;
  const extra = Array.from({ length: padding }, (_, index) => `query P${index} { __typename }`).join(' ');
  return `query Main { health { status ${'__typename '.repeat(remainder)}} } ${extra}`;
}

/** Lexical tokens in a document, as graphql-js's lexer (and armor's token limit) count them. */
function tokenCount(document: string): number {
  const lexer = new Lexer(new Source(document));
  let count = 0;
  while (lexer.advance().kind !== TokenKind.EOF) count += 1;
  return count;
}

/** `count` directives, one `@include` on each of `count` `__typename` selections. */
const documentWithDirectives = (count: number): string => `{ health { status ${'__typename @include(if: true) '.repeat(count)}} }`;

/** `fragment F0 on Query { ...F1 }` … down to `health { status }`: each spread counts as a level. */
function fragmentChain(length: number): string {
  const fragments = Array.from(
    { length },
    (_, index) => `fragment F${index} on Query { ${index === length - 1 ? 'health { status }' : `...F${index + 1}`} }`,
  );
  return `{ ...F0 } ${fragments.join(' ')}`;
}

describe('GraphQL limits at their defaults', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway.close());

  it('answers 16 aliases of health with 400 too_many_aliases, naming the limit of 15', async () => {
    const { message, details } = expectRefused(await postQuery(gateway, aliasedHealth(16)), 400, 'too_many_aliases');
    expect(`${message} ${details}`).toContain('15');
  });

  it('runs a query with exactly 15 aliases', async () => {
    const data = expectAnswered(await postQuery(gateway, aliasedHealth(15)));
    expect(Object.keys(data)).toHaveLength(15);
    expect(data.h14).toEqual({ status: 'healthy' });
  });

  it('answers a document of 2001 tokens with 400 too_many_tokens, naming the limit of 2000', async () => {
    expect(tokenCount(documentOfTokens(2001))).toBe(2001);
    const { message, details } = expectRefused(await postQuery(gateway, documentOfTokens(2001), 'Main'), 400, 'too_many_tokens');
    expect(`${message} ${details}`).toContain('2000');
  });

  it('runs a document of exactly 2000 tokens', async () => {
    expect(tokenCount(documentOfTokens(2000))).toBe(2000);
    expect(expectAnswered(await postQuery(gateway, documentOfTokens(2000), 'Main'))).toEqual({
      health: { status: 'healthy', __typename: 'HealthResponse' },
    });
  });

  it('answers 51 directives with 400 too_many_directives, naming the limit of 50', async () => {
    const { message, details } = expectRefused(await postQuery(gateway, documentWithDirectives(51)), 400, 'too_many_directives');
    expect(`${message} ${details}`).toContain('50');
  });

  it('runs a query with exactly 50 directives', async () => {
    expect(expectAnswered(await postQuery(gateway, documentWithDirectives(50)))).toEqual({
      health: { status: 'healthy', __typename: 'HealthResponse' },
    });
  });

  it('answers a chain of nested fragment spreads deeper than 8 with 400 query_too_deep', async () => {
    const { message, details } = expectRefused(await postQuery(gateway, fragmentChain(8)), 400, 'query_too_deep');
    expect(`${message} ${details}`).toContain('8');
  });

  it('answers a 10-deep __type query with 400 query_too_deep: only __schema is exempt from the depth limit', async () => {
    const query =
      '{ __type(name: "Query") { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }';
    expectRefused(await postQuery(gateway, query), 400, 'query_too_deep');
  });

  it('runs a chain of fragment spreads that stays within depth 8', async () => {
    // `{ ...F0 }`: the spread, F0's spread, F1's spread, health, status = depth 5 with three fragments.
    expect(expectAnswered(await postQuery(gateway, fragmentChain(3)))).toEqual({ health: { status: 'healthy' } });
  });
});

describe('GraphQL depth limit set low (GRAPHQL_MAX_DEPTH=3)', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { GRAPHQL_MAX_DEPTH: '3' } });
  });
  afterAll(() => gateway.close());

  it('answers a legitimate 4-deep query with 400 query_too_deep, naming the limit and the depth found', async () => {
    const answer = await postQuery(gateway, '{ models { models { pricing { input_per_million } } } }');
    const { message, details } = expectRefused(answer, 400, 'query_too_deep');
    expect(`${message} ${details}`).toMatch(/limit of 3\b.*found 4\b/);
  });

  it('runs a 3-deep query', async () => {
    const data = expectAnswered(await postQuery(gateway, '{ models { models { id } } }'));
    expect(data.models.models.length).toBeGreaterThan(0);
  });
});

describe('GraphQL cost limit set low (GRAPHQL_MAX_COST=11)', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { GRAPHQL_MAX_COST: '11' } });
  });
  afterAll(() => gateway.close());

  // Armor's cost: a scalar 1, an object 2 plus 1.5 × its children's cost.
  // { models { count models { id name } } } = 2 + 1.5 × (1 + (2 + 1.5 × 2)) = 11.

  it('runs a query that costs exactly the limit', async () => {
    const data = expectAnswered(await postQuery(gateway, '{ models { count models { id name } } }'));
    expect(data.models.count).toBe(data.models.models.length);
  });

  it('answers one more field (cost 12.5) with 400 query_too_costly, naming the limit', async () => {
    const answer = await postQuery(gateway, '{ models { count timestamp models { id name } } }');
    const { message, details } = expectRefused(answer, 400, 'query_too_costly');
    expect(`${message} ${details}`).toContain('11');
  });
});

describe('introspection and field suggestions', () => {
  let open: RunningGateway;
  let closed: RunningGateway;

  beforeAll(async () => {
    [open, closed] = await Promise.all([startGateway(), startGateway({ env: { INTROSPECTION: 'false' } })]);
  });
  afterAll(() => Promise.all([open.close(), closed.close()]));

  it('answers introspection by default', async () => {
    expect(expectAnswered(await postQuery(open, '{ __schema { queryType { name } } }'))).toEqual({
      __schema: { queryType: { name: 'Query' } },
    });
  });

  it('suggests the field meant for a misspelt one by default', async () => {
    const { message } = expectRefused(await postQuery(open, '{ helth { status } }'), 400, 'validation_error');
    expect(message).toContain('Did you mean "health"');
  });

  it('refuses __schema with 400 when INTROSPECTION is false', async () => {
    const { message } = expectRefused(await postQuery(closed, '{ __schema { queryType { name } } }'), 400, 'validation_error');
    expect(message).toMatch(/introspection/i);
  });

  it('refuses __type with 400 when INTROSPECTION is false', async () => {
    expectRefused(await postQuery(closed, '{ __type(name: "Query") { name } }'), 400, 'validation_error');
  });

  it('does not leak field names through suggestions when INTROSPECTION is false', async () => {
    const answer = await postQuery(closed, '{ helth { status } models { modls { id } } }');
    expectRefused(answer, 400, 'validation_error');
    expect(answer.text).not.toMatch(/did you mean/i);
    expect(answer.text).not.toContain('"health\\"');
    expect(answer.text).not.toContain('\\"models\\"');
  });

  it('still runs ordinary queries when INTROSPECTION is false', async () => {
    expect(expectAnswered(await postQuery(closed, '{ health { status } }'))).toEqual({ health: { status: 'healthy' } });
  });
});

describe('CSRF prevention, batching and body size', () => {
  let gateway: RunningGateway;
  const healthQuery = `query=${encodeURIComponent('{health{status}}')}`;

  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway.close());

  it('refuses a simple GET /graphql (no preflight header, no JSON content type) with 400', async () => {
    const answer = await send(`${gateway.url}/graphql?${healthQuery}`, { method: 'GET' });
    const { message } = expectRefused(answer, 400, 'bad_request');
    expect(message).toMatch(/CSRF/);
  });

  it('refuses a POST /graphql sent as text/plain (a form-like simple request) with 400', async () => {
    const answer = await send(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: '{ health { status } }' }),
    });
    expectRefused(answer, 400, 'bad_request');
  });

  it('answers a POST /graphql with application/json', async () => {
    expect(expectAnswered(await postQuery(gateway, '{ health { status } }'))).toEqual({ health: { status: 'healthy' } });
  });

  it('answers a GET /graphql that carries apollo-require-preflight: true', async () => {
    const answer = await send(`${gateway.url}/graphql?${healthQuery}`, { method: 'GET', headers: { 'apollo-require-preflight': 'true' } });
    expect(expectAnswered(answer)).toEqual({ health: { status: 'healthy' } });
  });

  it('answers a GET /graphql that carries a JSON content type', async () => {
    const answer = await send(`${gateway.url}/graphql?${healthQuery}`, { method: 'GET', headers: { 'content-type': 'application/json' } });
    expect(expectAnswered(answer)).toEqual({ health: { status: 'healthy' } });
  });

  it('refuses a batched (array) request with 400 and runs none of its operations', async () => {
    const answer = await send(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ health { status } }' }, { query: '{ models { count } }' }]),
    });
    expectRefused(answer, 400, 'bad_request');
    expect(Array.isArray(answer.body)).toBe(false);
  });

  it('answers a /graphql body over 1 MiB with 413 payload_too_large', async () => {
    const query = `{ health { status } } # ${'x'.repeat(1024 * 1024)}`;
    const answer = await send(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    expectRefused(answer, 413, 'payload_too_large');
  });

  it('answers a /graphql body just under 1 MiB normally (the token limit counts tokens, not comment bytes)', async () => {
    const envelope = JSON.stringify({ query: '{ health { status } } # ' });
    const query = `{ health { status } } # ${'x'.repeat(1024 * 1024 - envelope.length)}`;
    expect(Buffer.byteLength(JSON.stringify({ query }))).toBe(1024 * 1024);
    expect(expectAnswered(await postQuery(gateway, query))).toEqual({ health: { status: 'healthy' } });
  });
});
