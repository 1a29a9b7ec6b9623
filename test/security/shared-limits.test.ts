/**
 * Replicas behind one Redis share their rate-limit counters: calls spread over two gateway instances
 * with the same REDIS_URL are counted together, and a Retry-After given by one is honoured by the other;
 * an instance without REDIS_URL counts on its own; an instance whose Redis is down serves unlimited.
 */
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { freePort } from '../support/polling';
import { startRedis, type TestRedis } from '../support/redis-server';
import { startGateway, type GraphQLResult, type RunningGateway } from '../support/start-gateway';
import { GenerateDocument } from '../generated/graphql';

const LIMIT = 3;
// GCRA frees one call every WINDOW_MS / LIMIT (1.5 s): each test's burst fits well inside that.
const WINDOW_MS = 4500;
const MODEL = 'gpt-4o-mini';
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One key per test, so no test inherits another's counts. */
const KEY_COUNT = 9;
const sharedKey = (n: number): string => `shared-key-${n}-0123456789abcdef`;
const KEYS = Array.from({ length: KEY_COUNT }, (_, index) => sharedKey(index + 1));
const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

const graphqlGenerate = (gateway: RunningGateway, key: string) =>
  gateway.execute(GenerateDocument, { prompt: 'count me', model_id: MODEL }, auth(key));
const restGenerate = (gateway: RunningGateway, key: string) =>
  rest(gateway, 'POST', '/generate', { prompt: 'count me', model_id: MODEL }, auth(key));

function expectGraphQLAllowed(result: GraphQLResult, remaining: number): void {
  expect({ status: result.status, errors: result.body.errors }).toEqual({ status: 200, errors: undefined });
  expect(result.body.data?.generate.text).toBe('echo: count me');
  expect(result.headers.get('x-ratelimit-limit')).toBe(String(LIMIT));
  expect(result.headers.get('x-ratelimit-remaining')).toBe(String(remaining));
}

function expectRestAllowed(response: RestResponse, remaining: number): void {
  expectToMatchContract(response, '/generate', 'post');
  expect(response.status).toBe(200);
  expect(response.body.text).toBe('echo: count me');
  expect(response.headers.get('x-ratelimit-limit')).toBe(String(LIMIT));
  expect(response.headers.get('x-ratelimit-remaining')).toBe(String(remaining));
}

/** GraphQL answers an executed operation with HTTP 200 (a router would drop the code otherwise): the code and headers say refused. */
function expectGraphQLRefused(result: GraphQLResult): void {
  expect(result.status).toBe(200);
  expect(result.body.errors?.[0]?.extensions?.code).toBe('rate_limit_exceeded');
  expect(result.headers.get('x-ratelimit-remaining')).toBe('0');
  expect(result.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
}

function expectRestRefused(response: RestResponse): void {
  expectToMatchContract(response, '/generate', 'post');
  expect(response.status).toBe(429);
  expect(response.body).toMatchObject({
    error: 'rate_limit_exceeded',
    message: expect.any(String),
    timestamp: expect.stringMatching(isoTimestamp),
  });
  expect(response.headers.get('x-ratelimit-remaining')).toBe('0');
  expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
}

let fake: FakeUpstream;
let redis: TestRedis;
let first: RunningGateway;
let second: RunningGateway;
let standalone: RunningGateway;

beforeAll(async () => {
  fake = await startFakeUpstream();
  redis = await startRedis();
  const env = {
    OPENAI_API_KEY: 'sk-shared-upstream',
    OPENAI_BASE_URL: fake.url,
    API_KEYS: KEYS.join(','),
    RATE_LIMIT_GENERATE: String(LIMIT),
    RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
  };
  [first, second, standalone] = await Promise.all([
    startGateway({ env: { ...env, REDIS_URL: redis.url } }),
    startGateway({ env: { ...env, REDIS_URL: redis.url } }),
    startGateway({ env: { ...env, REDIS_URL: undefined } }),
  ]);
  // Warm routes, SDK clients and the Redis connections outside the timed sequences.
  const warmUp = sharedKey(KEY_COUNT);
  await Promise.all([first, second, standalone].flatMap((gateway) => [graphqlGenerate(gateway, warmUp), restGenerate(gateway, warmUp)]));
  await sleep(WINDOW_MS + 100);
});

afterAll(async () => {
  await Promise.all([first?.close(), second?.close(), standalone?.close()]);
  await redis?.stop();
  await fake?.close();
});

it('refuses the 4th generate in total when calls alternate between two instances sharing Redis', async () => {
  const key = sharedKey(1);
  expectGraphQLAllowed(await graphqlGenerate(first, key), 2);
  expectGraphQLAllowed(await graphqlGenerate(second, key), 1);
  expectGraphQLAllowed(await graphqlGenerate(first, key), 0);
  expectGraphQLRefused(await graphqlGenerate(second, key));
  expectGraphQLRefused(await graphqlGenerate(first, key));
});

it('shares one counter between REST and GraphQL across the instances', async () => {
  const key = sharedKey(2);
  expectRestAllowed(await restGenerate(second, key), 2);
  expectGraphQLAllowed(await graphqlGenerate(first, key), 1);
  expectRestAllowed(await restGenerate(first, key), 0);
  expectRestRefused(await restGenerate(second, key));
  expectGraphQLRefused(await graphqlGenerate(second, key));
});

it('keeps each key on its own counter in Redis', async () => {
  const [exhausted, fresh] = [sharedKey(3), sharedKey(4)];
  for (const gateway of [first, second, first]) await graphqlGenerate(gateway, exhausted);
  expectGraphQLRefused(await graphqlGenerate(second, exhausted));
  expectGraphQLAllowed(await graphqlGenerate(second, fresh), 2);
});

it('counts on its own on an instance without REDIS_URL', async () => {
  const key = sharedKey(5);
  for (const gateway of [first, second, first]) await graphqlGenerate(gateway, key);
  expectGraphQLRefused(await graphqlGenerate(second, key));
  // The standalone instance has seen none of those calls…
  expectGraphQLAllowed(await graphqlGenerate(standalone, key), 2);
  expectRestAllowed(await restGenerate(standalone, key), 1);
  expectGraphQLAllowed(await graphqlGenerate(standalone, key), 0);
  expectRestRefused(await restGenerate(standalone, key));
  // …and its calls did not count in Redis.
  expectGraphQLRefused(await graphqlGenerate(first, key));
});

it('lets the shared counter expire after the window on both instances', async () => {
  const key = sharedKey(6);
  for (const gateway of [first, second, first]) await graphqlGenerate(gateway, key);
  expectGraphQLRefused(await graphqlGenerate(second, key));
  await sleep(WINDOW_MS + 100);
  expectGraphQLAllowed(await graphqlGenerate(second, key), 2);
  expectRestAllowed(await restGenerate(first, key), 1);
});

it('lets exactly 3 of 10 simultaneous generate calls spread over the two instances through', async () => {
  const key = sharedKey(7);
  fake.reset();
  const answers = await Promise.all(Array.from({ length: 10 }, (_, index) => graphqlGenerate(index % 2 === 0 ? first : second, key)));
  const refused = answers.filter((answer) => answer.body.errors !== undefined);
  expect(refused).toHaveLength(7);
  for (const answer of refused) expectGraphQLRefused(answer);
  for (const answer of answers.filter((candidate) => !refused.includes(candidate)))
    expect(answer.body.data?.generate.text).toBe('echo: count me');
  // What the limit protects: the upstream was called three times, not ten.
  expect(fake.requests.filter((request) => request.method === 'POST')).toHaveLength(3);
});

it('serves on one instance the call another refused, once the client has waited the Retry-After it gave', async () => {
  const key = sharedKey(8);
  for (const gateway of [first, second, first]) await graphqlGenerate(gateway, key);
  const refused = await graphqlGenerate(second, key);
  expectGraphQLRefused(refused);
  // The first of the three calls frees its place 1.5 s after it was made: at most 2 s rounded up.
  expect(refused.headers.get('retry-after')).toMatch(/^[12]$/);
  await sleep(Number(refused.headers.get('retry-after')) * 1000);
  expectRestAllowed(await restGenerate(first, key), 0);
  expectRestRefused(await restGenerate(second, key));
});

describe('with Redis unreachable', () => {
  let broken: RunningGateway;

  beforeAll(async () => {
    const deadRedis = `redis://127.0.0.1:${await freePort()}/0`;
    broken = await startGateway({
      env: {
        OPENAI_API_KEY: 'sk-shared-upstream',
        OPENAI_BASE_URL: fake.url,
        API_KEYS: KEYS.join(','),
        RATE_LIMIT_GENERATE: String(LIMIT),
        REDIS_URL: deadRedis,
      },
    });
  });
  afterAll(async () => {
    await broken?.close();
  });

  it('serves every call without rate-limit headers rather than failing', async () => {
    const key = sharedKey(1);
    for (let i = 0; i <= LIMIT; i++) {
      const result = await graphqlGenerate(broken, key);
      expect({ status: result.status, errors: result.body.errors }).toEqual({ status: 200, errors: undefined });
      expect(result.headers.get('x-ratelimit-limit')).toBeNull();
    }
    const response = await restGenerate(broken, key);
    expect(response.status).toBe(200);
    expect(response.body.text).toBe('echo: count me');
  });
});
