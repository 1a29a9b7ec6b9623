/**
 * Rate limits as a caller meets them: generate, generate_batch and every other operation refused at
 * exactly request N+1 within the window, one counter for GraphQL and REST, X-RateLimit-* headers counting
 * down, rate_limit_exceeded with a Retry-After that a waiting client can trust (REST answers 429), refused
 * calls not counted, separate counters per key (or per client address with auth off), per-key limits from
 * API_KEYS_FILE, and the window passing.
 */
import * as http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startGateway, type GraphQLResult, type RunningGateway } from '../support/start-gateway';
import { GenerateBatchDocument, GenerateDocument, ModelsDocument, StatusDocument } from '../generated/graphql';

// GCRA frees one call every WINDOW_MS / limit (1.5 s for generate): each test's burst fits well inside that.
const WINDOW_MS = 4500;
const LIMITS = { generate: 3, generate_batch: 2, other: 5 };
const limitEnv = {
  RATE_LIMIT_GENERATE: String(LIMITS.generate),
  RATE_LIMIT_GENERATE_BATCH: String(LIMITS.generate_batch),
  RATE_LIMIT_DEFAULT: String(LIMITS.other),
  RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
};
const MODEL = 'gpt-4o-mini';
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One API_KEYS key per test, so no test inherits another's counts within the short window. */
const inlineKey = (n: number): string => `rate-key-${n}-0123456789abcdef`;
const INLINE_KEYS = Array.from({ length: 14 }, (_, index) => inlineKey(index + 1));
const WARM_UP_KEY = inlineKey(14);
const LIMITED_KEY = 'rate-file-limited-0123456789abcdef';
const UNLIMITED_FILE_KEY = 'rate-file-default-0123456789abcdef';
const FILE_LIMITS = { generate: 1, generate_batch: 1, other: 2 };

const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

function writeKeysFile(content: unknown): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-keys-'));
  const file = path.join(directory, 'keys.json');
  writeFileSync(file, JSON.stringify(content));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Calls, each returning what the user sees.

type Answer = RestResponse | GraphQLResult;

const graphqlGenerate = (gateway: RunningGateway, headers: Record<string, string>) =>
  gateway.execute(GenerateDocument, { prompt: 'count me', model_id: MODEL }, headers);
const graphqlBatch = (gateway: RunningGateway, headers: Record<string, string>) =>
  gateway.execute(GenerateBatchDocument, { prompts: ['one', 'two'], model_id: MODEL }, headers);
const restGenerate = (gateway: { url: string }, headers: Record<string, string>) =>
  rest(gateway, 'POST', '/generate', { prompt: 'count me', model_id: MODEL }, headers);
const restBatch = (gateway: { url: string }, headers: Record<string, string>) =>
  rest(gateway, 'POST', '/generate/batch', { prompts: ['one', 'two'], model_id: MODEL }, headers);
const restModels = (gateway: { url: string }, headers: Record<string, string>) => rest(gateway, 'GET', '/models', undefined, headers);

/** The same REST request as `rest`, sent from a chosen local address (127.0.0.0/8 is all loopback on Linux). */
function restFrom(localAddress: string, gateway: { url: string }, method: string, route: string, body?: unknown): Promise<RestResponse> {
  const target = new URL(`${gateway.url}/api/v1${route}`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method,
        localAddress,
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: response.statusCode ?? 0, headers, body: parsed });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------
// Assertions.

const header = (answer: Answer, name: string): string | null => answer.headers.get(name);

/** X-RateLimit-* as a counted, allowed call shows them. */
function expectAllowed(answer: Answer, limit: number, remaining: number): void {
  const errors = 'errors' in (answer.body ?? {}) ? (answer.body as GraphQLResult['body']).errors : undefined;
  expect({ status: answer.status, errors }).toEqual({ status: 200, errors: undefined });
  expect(header(answer, 'x-ratelimit-limit')).toBe(String(limit));
  expect(header(answer, 'x-ratelimit-remaining')).toBe(String(remaining));
  expectResetInTheFuture(answer);
  expect(header(answer, 'retry-after')).toBeNull();
}

function expectResetInTheFuture(answer: Answer): void {
  const reset = header(answer, 'x-ratelimit-reset');
  expect(reset).toMatch(/^\d+$/);
  const resetMs = Number(reset) * 1000;
  // Epoch seconds (not seconds from now, not milliseconds), at most one window (rounded up) ahead.
  expect(resetMs).toBeGreaterThan(Date.now());
  expect(resetMs).toBeLessThanOrEqual(Date.now() + WINDOW_MS + 1000);
}

function expectRetryAfter(answer: Answer): void {
  const retryAfter = header(answer, 'retry-after');
  expect(retryAfter).toMatch(/^[1-9]\d*$/);
  expect(Number(retryAfter)).toBeLessThanOrEqual(Math.ceil(WINDOW_MS / 1000));
}

/** GraphQL answers an executed operation with HTTP 200 (a router would drop the code otherwise): the code and headers say refused. */
function expectGraphQLRefused(result: GraphQLResult, limit: number): void {
  expect(result.status).toBe(200);
  expect(result.body.data ?? null).toBeNull();
  expect(result.body.errors?.[0]?.extensions?.code).toBe('rate_limit_exceeded');
  expect(header(result, 'x-ratelimit-limit')).toBe(String(limit));
  expect(header(result, 'x-ratelimit-remaining')).toBe('0');
  expectResetInTheFuture(result);
  expectRetryAfter(result);
}

/** What a call came to, in the terms each surface uses: REST by status, GraphQL by its error code. */
const restOutcome = (answer: Answer): string =>
  answer.status === 200 ? 'served' : answer.status === 429 ? 'refused' : `HTTP ${answer.status}`;
const graphqlOutcome = (result: GraphQLResult): string => {
  const code = result.body.errors?.[0]?.extensions?.code;
  if (code === undefined) return result.status === 200 && result.body.data ? 'served' : `HTTP ${result.status}`;
  return code === 'rate_limit_exceeded' ? 'refused' : String(code);
};

function expectRestRefused(
  response: RestResponse,
  contractPath: '/generate' | '/generate/batch' | '/models' | '/status' | '/health',
  limit: number,
): void {
  expectToMatchContract(response, contractPath, contractPath.startsWith('/generate') ? 'post' : 'get');
  expect(response.status).toBe(429);
  expect(response.body).toEqual({
    error: 'rate_limit_exceeded',
    message: expect.any(String),
    timestamp: expect.stringMatching(isoTimestamp),
    ...(response.body.details === undefined ? {} : { details: expect.any(String) }),
  });
  expect(header(response, 'x-ratelimit-limit')).toBe(String(limit));
  expect(header(response, 'x-ratelimit-remaining')).toBe('0');
  expectResetInTheFuture(response);
  expectRetryAfter(response);
}

function expectRestAllowed(
  response: RestResponse,
  contractPath: '/generate' | '/generate/batch' | '/models' | '/status' | '/health',
  limit: number,
  remaining: number,
): void {
  expectToMatchContract(response, contractPath, contractPath.startsWith('/generate') ? 'post' : 'get');
  expectAllowed(response, limit, remaining);
}

// ---------------------------------------------------------------------------------------------

let fake: FakeUpstream;

beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
});

describe('with API keys', () => {
  let gateway: RunningGateway;
  let nextKey = 0;
  /** A key no earlier test has used. */
  const freshKey = (): string => {
    const key = INLINE_KEYS[nextKey++];
    if (!key || key === WARM_UP_KEY) throw new Error('add keys to INLINE_KEYS');
    return key;
  };

  beforeAll(async () => {
    gateway = await startGateway({
      env: {
        OPENAI_API_KEY: 'sk-rate-upstream',
        OPENAI_BASE_URL: fake.url,
        API_KEYS: INLINE_KEYS.join(','),
        API_KEYS_FILE: writeKeysFile({
          keys: [
            { name: 'limited-bot', key: LIMITED_KEY, limits: FILE_LIMITS },
            { name: 'default-bot', key: UNLIMITED_FILE_KEY },
          ],
        }),
        ...limitEnv,
      },
    });
    // First calls compile routes and warm the SDK: pay that outside the timed sequences.
    await graphqlGenerate(gateway, auth(WARM_UP_KEY));
    await restGenerate(gateway, auth(WARM_UP_KEY));
    await graphqlBatch(gateway, auth(WARM_UP_KEY));
    await restBatch(gateway, auth(WARM_UP_KEY));
    await restModels(gateway, auth(WARM_UP_KEY));
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('refuses the 4th GraphQL generate in the window with rate_limit_exceeded and Retry-After, counting down X-RateLimit-Remaining', async () => {
    const key = freshKey();
    for (const remaining of [2, 1, 0]) expectAllowed(await graphqlGenerate(gateway, auth(key)), LIMITS.generate, remaining);
    expectGraphQLRefused(await graphqlGenerate(gateway, auth(key)), LIMITS.generate);
  });

  it('does not call the upstream for a refused generate', async () => {
    const key = freshKey();
    for (let i = 0; i < LIMITS.generate; i++) await graphqlGenerate(gateway, auth(key));
    fake.reset();
    expectGraphQLRefused(await graphqlGenerate(gateway, auth(key)), LIMITS.generate);
    expect(fake.requests.filter((request) => request.method === 'POST')).toEqual([]);
  });

  it('counts REST POST /generate and GraphQL generate against one limit per key', async () => {
    const key = freshKey();
    expectAllowed(await graphqlGenerate(gateway, auth(key)), LIMITS.generate, 2);
    expectRestAllowed(await restGenerate(gateway, auth(key)), '/generate', LIMITS.generate, 1);
    expectAllowed(await graphqlGenerate(gateway, auth(key)), LIMITS.generate, 0);
    expectRestRefused(await restGenerate(gateway, auth(key)), '/generate', LIMITS.generate);
    expectGraphQLRefused(await graphqlGenerate(gateway, auth(key)), LIMITS.generate);
  });

  it('refuses the 3rd generate_batch in the window, GraphQL and REST alike', async () => {
    const key = freshKey();
    expectRestAllowed(await restBatch(gateway, auth(key)), '/generate/batch', LIMITS.generate_batch, 1);
    expectAllowed(await graphqlBatch(gateway, auth(key)), LIMITS.generate_batch, 0);
    expectGraphQLRefused(await graphqlBatch(gateway, auth(key)), LIMITS.generate_batch);
    expectRestRefused(await restBatch(gateway, auth(key)), '/generate/batch', LIMITS.generate_batch);
  });

  it('counts a batch as one generate_batch call and not against generate', async () => {
    const key = freshKey();
    expectAllowed(await graphqlBatch(gateway, auth(key)), LIMITS.generate_batch, 1);
    expectAllowed(await graphqlGenerate(gateway, auth(key)), LIMITS.generate, 2);
  });

  it('refuses the 6th call of another operation (models) in the window, GraphQL and REST alike', async () => {
    const key = freshKey();
    expectRestAllowed(await restModels(gateway, auth(key)), '/models', LIMITS.other, 4);
    expectAllowed(await gateway.execute(ModelsDocument, {}, auth(key)), LIMITS.other, 3);
    expectRestAllowed(await restModels(gateway, auth(key)), '/models', LIMITS.other, 2);
    expectAllowed(await gateway.execute(ModelsDocument, {}, auth(key)), LIMITS.other, 1);
    expectRestAllowed(await restModels(gateway, auth(key)), '/models', LIMITS.other, 0);
    expectRestRefused(await restModels(gateway, auth(key)), '/models', LIMITS.other);
    expectGraphQLRefused(await gateway.execute(ModelsDocument, {}, auth(key)), LIMITS.other);
  });

  it('keeps separate counters for each other operation and for generate', async () => {
    const key = freshKey();
    for (let i = 0; i < LIMITS.other; i++) await restModels(gateway, auth(key));
    expectRestRefused(await restModels(gateway, auth(key)), '/models', LIMITS.other);
    expectRestAllowed(await rest(gateway, 'GET', '/status', undefined, auth(key)), '/status', LIMITS.other, 4);
    expectAllowed(await gateway.execute(StatusDocument, {}, auth(key)), LIMITS.other, 3);
    expectAllowed(await graphqlGenerate(gateway, auth(key)), LIMITS.generate, 2);
  });

  it('keeps a separate counter for each key', async () => {
    const first = freshKey();
    const second = freshKey();
    for (let i = 0; i < LIMITS.generate; i++) await graphqlGenerate(gateway, auth(first));
    expectGraphQLRefused(await graphqlGenerate(gateway, auth(first)), LIMITS.generate);
    expectAllowed(await graphqlGenerate(gateway, auth(second)), LIMITS.generate, 2);
    expectRestAllowed(await restGenerate(gateway, auth(second)), '/generate', LIMITS.generate, 1);
    expectRestRefused(await restGenerate(gateway, auth(first)), '/generate', LIMITS.generate);
  });

  it('applies the per-key limits of API_KEYS_FILE to that key', async () => {
    expectRestAllowed(await restGenerate(gateway, auth(LIMITED_KEY)), '/generate', FILE_LIMITS.generate, 0);
    expectGraphQLRefused(await graphqlGenerate(gateway, auth(LIMITED_KEY)), FILE_LIMITS.generate);
    expectAllowed(await graphqlBatch(gateway, auth(LIMITED_KEY)), FILE_LIMITS.generate_batch, 0);
    expectRestRefused(await restBatch(gateway, auth(LIMITED_KEY)), '/generate/batch', FILE_LIMITS.generate_batch);
    expectRestAllowed(await restModels(gateway, auth(LIMITED_KEY)), '/models', FILE_LIMITS.other, 1);
    expectAllowed(await gateway.execute(ModelsDocument, {}, auth(LIMITED_KEY)), FILE_LIMITS.other, 0);
    expectRestRefused(await restModels(gateway, auth(LIMITED_KEY)), '/models', FILE_LIMITS.other);
  });

  it('gives a file key without limits the global limits', async () => {
    for (const remaining of [2, 1, 0]) expectAllowed(await graphqlGenerate(gateway, auth(UNLIMITED_FILE_KEY)), LIMITS.generate, remaining);
    expectRestRefused(await restGenerate(gateway, auth(UNLIMITED_FILE_KEY)), '/generate', LIMITS.generate);
  });

  it('answers the same call again once the window has passed', async () => {
    const key = freshKey();
    for (let i = 0; i < LIMITS.generate; i++) await graphqlGenerate(gateway, auth(key));
    expectGraphQLRefused(await graphqlGenerate(gateway, auth(key)), LIMITS.generate);
    expectRestRefused(await restGenerate(gateway, auth(key)), '/generate', LIMITS.generate);
    await sleep(WINDOW_MS + 100);
    expectAllowed(await graphqlGenerate(gateway, auth(key)), LIMITS.generate, 2);
    expectRestAllowed(await restGenerate(gateway, auth(key)), '/generate', LIMITS.generate, 1);
  });

  it('does not count refused calls: a caller that waits the Retry-After it was given is served', async () => {
    const key = freshKey();
    for (let i = 0; i < LIMITS.generate; i++) await graphqlGenerate(gateway, auth(key));
    let refused = await graphqlGenerate(gateway, auth(key));
    for (let i = 0; i < 5; i++) {
      expectGraphQLRefused(refused, LIMITS.generate);
      refused = await graphqlGenerate(gateway, auth(key));
    }
    // One call frees every WINDOW_MS / limit = 1.5 s after the first: at most 2 s rounded up, whatever the hammering.
    expect(header(refused, 'retry-after')).toMatch(/^[12]$/);
    await sleep(Number(header(refused, 'retry-after')) * 1000);
    expectRestAllowed(await restGenerate(gateway, auth(key)), '/generate', LIMITS.generate, 0);
    expectRestRefused(await restGenerate(gateway, auth(key)), '/generate', LIMITS.generate);
  });

  it('lets exactly 3 of 10 simultaneous generate calls through', async () => {
    const key = freshKey();
    fake.reset();
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? graphqlGenerate(gateway, auth(key)) : restGenerate(gateway, auth(key)))),
    );
    const outcomes = answers.map((answer, index) => (index % 2 === 0 ? graphqlOutcome(answer as GraphQLResult) : restOutcome(answer)));
    expect(outcomes.sort()).toEqual([
      'refused',
      'refused',
      'refused',
      'refused',
      'refused',
      'refused',
      'refused',
      'served',
      'served',
      'served',
    ]);
    expect(fake.requests.filter((request) => request.method === 'POST')).toHaveLength(3);
  });

  it('does not let one client use up the key-less probes of another client', async () => {
    // Without a key, /health and /ready are open; one client hammering them must not make another's probe fail.
    for (let i = 0; i < LIMITS.other; i++) await restFrom('127.0.0.2', gateway, 'GET', '/health');
    const other = await restFrom('127.0.0.3', gateway, 'GET', '/health');
    expectRestAllowed(other, '/health', LIMITS.other, LIMITS.other - 1);
  });
});

describe('with authentication off', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({
      env: { OPENAI_API_KEY: 'sk-rate-upstream', OPENAI_BASE_URL: fake.url, API_KEYS: undefined, API_KEYS_FILE: undefined, ...limitEnv },
    });
    await restFrom('127.0.0.9', gateway, 'POST', '/generate', { prompt: 'warm up', model_id: MODEL });
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('limits each client address on its own', async () => {
    const generate = (from: string) => restFrom(from, gateway, 'POST', '/generate', { prompt: 'count me', model_id: MODEL });
    for (const remaining of [2, 1, 0]) expectRestAllowed(await generate('127.0.0.4'), '/generate', LIMITS.generate, remaining);
    expectRestRefused(await generate('127.0.0.4'), '/generate', LIMITS.generate);
    expectRestAllowed(await generate('127.0.0.5'), '/generate', LIMITS.generate, 2);
    expectRestRefused(await generate('127.0.0.4'), '/generate', LIMITS.generate);
  });

  it('counts GraphQL and REST from one address together, whatever key it sends', async () => {
    // fetch connects from 127.0.0.1.
    expectAllowed(await graphqlGenerate(gateway, {}), LIMITS.generate, 2);
    expectRestAllowed(await restGenerate(gateway, auth('made-up-key-0123456789abcdef')), '/generate', LIMITS.generate, 1);
    expectAllowed(await graphqlGenerate(gateway, auth('another-made-up-key-0123456789')), LIMITS.generate, 0);
    expectGraphQLRefused(await graphqlGenerate(gateway, {}), LIMITS.generate);
    expectRestAllowed(
      await restFrom('127.0.0.6', gateway, 'POST', '/generate', { prompt: 'hi', model_id: MODEL }),
      '/generate',
      LIMITS.generate,
      2,
    );
  });
});
