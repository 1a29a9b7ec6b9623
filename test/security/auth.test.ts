/**
 * API keys as a user meets them: every REST route and every GraphQL operation, without a key, with a wrong
 * key and with a right one, on a gateway keyed through API_KEYS and on one keyed through API_KEYS_FILE;
 * malformed Authorization headers; keys never echoed; and the open gateway when no key is configured.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import YAML from 'yaml';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { contractDocument, expectToMatchComponentSchema, expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startGateway, type GraphQLResult, type RunningGateway } from '../support/start-gateway';
import {
  GenerateBatchDocument,
  GenerateDocument,
  HealthDocument,
  ModelDocument,
  ModelsDocument,
  ReadyDocument,
  StatusDocument,
} from '../generated/graphql';

const UPSTREAM_KEY = 'sk-auth-upstream-secret-7777';
const KEY_ONE = 'key-one-0123456789abcdef';
const KEY_TWO = 'key-two-0123456789abcdef';
const FILE_HASHED_KEY = 'file-hashed-key-0123456789abcdef';
const FILE_PLAIN_KEY = 'file-plain-key-0123456789abcdef';
const UNKNOWN_KEY = 'unknown-key-0123456789abcdef';
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

const MODEL = 'gpt-4o-mini';
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const authOffWarning = /authentication is off/i;

const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

function writeKeysFile(content: unknown): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-keys-'));
  const file = path.join(directory, 'keys.json');
  writeFileSync(file, JSON.stringify(content));
  return file;
}

// ---------------------------------------------------------------------------------------------
// The routes and operations, with what a right key gets back.

type ContractPath = '/health' | '/status' | '/ready' | '/models' | '/models/{model_id}' | '/generate' | '/generate/batch' | '/openapi.json';

interface RestRoute {
  readonly label: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** The contract's path template; undefined for /openapi.yaml, whose answer is YAML. */
  readonly contractPath?: ContractPath;
  readonly body?: unknown;
  /** A probe: answers without a key. */
  readonly open?: boolean;
  /** What a user checks in a 200 answer (already validated against the contract). */
  readonly expectBody: (body: any) => void;
}

const restRoutes: readonly RestRoute[] = [
  {
    label: 'GET /api/v1/health',
    method: 'GET',
    path: '/health',
    contractPath: '/health',
    open: true,
    expectBody: (body) => expect(body.status).toBe('healthy'),
  },
  {
    label: 'GET /api/v1/ready',
    method: 'GET',
    path: '/ready',
    contractPath: '/ready',
    open: true,
    expectBody: (body) => expect(body.ready).toBe(true),
  },
  {
    label: 'GET /api/v1/status',
    method: 'GET',
    path: '/status',
    contractPath: '/status',
    expectBody: (body) => expect(body.providers).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'openai' })])),
  },
  {
    label: 'GET /api/v1/models',
    method: 'GET',
    path: '/models',
    contractPath: '/models',
    expectBody: (body) => expect(body.models).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'gpt-4o' })])),
  },
  {
    label: 'GET /api/v1/models/gpt-4o',
    method: 'GET',
    path: '/models/gpt-4o',
    contractPath: '/models/{model_id}',
    expectBody: (body) => expect(body.model ?? body).toMatchObject({ id: 'gpt-4o' }),
  },
  {
    label: 'GET /api/v1/openapi.json',
    method: 'GET',
    path: '/openapi.json',
    contractPath: '/openapi.json',
    expectBody: (body) => expect(body).toEqual(JSON.parse(JSON.stringify(contractDocument))),
  },
  {
    label: 'GET /api/v1/openapi.yaml',
    method: 'GET',
    path: '/openapi.yaml',
    expectBody: (body) => expect(YAML.parse(body as string)).toEqual(contractDocument),
  },
  {
    label: 'POST /api/v1/generate',
    method: 'POST',
    path: '/generate',
    contractPath: '/generate',
    body: { prompt: 'hello there', model_id: MODEL },
    expectBody: (body) => expect(body.text).toBe('echo: hello there'),
  },
  {
    label: 'POST /api/v1/generate/batch',
    method: 'POST',
    path: '/generate/batch',
    contractPath: '/generate/batch',
    body: { prompts: ['first one', 'second one'], model_id: MODEL },
    expectBody: (body) => expect(body.results.map((r: any) => r.text)).toEqual(['echo: first one', 'echo: second one']),
  },
];

interface GraphQLOperation {
  readonly label: string;
  readonly document: TypedDocumentNode<any, any>;
  readonly variables?: Record<string, unknown>;
  readonly expectData: (data: any) => void;
}

const graphqlOperations: readonly GraphQLOperation[] = [
  { label: 'health', document: HealthDocument, expectData: (data) => expect(data.health.status).toBe('healthy') },
  { label: 'status', document: StatusDocument, expectData: (data) => expect(data.status.version).toBe('1.0.0') },
  { label: 'ready', document: ReadyDocument, expectData: (data) => expect(data.ready.ready).toBe(true) },
  {
    label: 'models',
    document: ModelsDocument,
    expectData: (data) => expect(data.models.models.map((m: any) => m.id)).toContain('gpt-4o'),
  },
  {
    label: 'model',
    document: ModelDocument,
    variables: { model_id: 'gpt-4o' },
    expectData: (data) => expect(data.model.model.id).toBe('gpt-4o'),
  },
  {
    label: 'generate',
    document: GenerateDocument,
    variables: { prompt: 'hello there', model_id: MODEL },
    expectData: (data) => expect(data.generate.text).toBe('echo: hello there'),
  },
  {
    label: 'generate_batch',
    document: GenerateBatchDocument,
    variables: { prompts: ['first one', 'second one'], model_id: MODEL },
    expectData: (data) => expect(data.generate_batch.results.map((r: any) => r.text)).toEqual(['echo: first one', 'echo: second one']),
  },
];

// ---------------------------------------------------------------------------------------------
// What a user sees.

const callRest = (gateway: RunningGateway, route: RestRoute, headers: Record<string, string>): Promise<RestResponse> =>
  rest(gateway, route.method, route.path, route.body, headers);

/** No header value and no byte of the body carries the key. */
function expectKeyNotEchoed(response: { headers: Headers; body: unknown }, key: string): void {
  const body = typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
  expect(body).not.toContain(key);
  response.headers.forEach((value, name) => {
    expect(`${name}: ${value}`).not.toContain(key);
  });
}

/** The 401 a REST user gets: an ErrorResponse `unauthorized` and a Bearer challenge. */
function expectRestUnauthorized(response: RestResponse, route: RestRoute): void {
  if (route.contractPath && route.contractPath !== '/openapi.json') {
    expectToMatchContract(response, route.contractPath, route.method === 'GET' ? 'get' : 'post');
  } else {
    // The contract documents no 401 for the documents (see "the contract and the gateway agree…" below).
    expectToMatchComponentSchema(response, 'ErrorResponse');
  }
  expect(response.status).toBe(401);
  expect(response.body).toEqual({
    error: 'unauthorized',
    message: expect.any(String),
    timestamp: expect.stringMatching(isoTimestamp),
    ...(response.body.details === undefined ? {} : { details: expect.any(String) }),
  });
  expect(response.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
}

function expectRestOk(response: RestResponse, route: RestRoute): void {
  if (route.contractPath) {
    expectToMatchContract(response, route.contractPath, route.method === 'GET' ? 'get' : 'post');
  } else {
    // /openapi.yaml: the contract describes a YAML string; its content must be the contract itself.
    expect(response.headers.get('content-type')).toMatch(/^application\/yaml\b/);
    expect(typeof response.body).toBe('string');
  }
  expect(response.status).toBe(200);
  expect(response.headers.get('www-authenticate')).toBeNull();
  route.expectBody(response.body);
}

function expectGraphQLUnauthorized(result: GraphQLResult): void {
  expect(result.status).toBe(401);
  expect(result.body.data ?? undefined).toBeUndefined();
  expect(result.body.errors).toHaveLength(1);
  expect(result.body.errors?.[0]?.extensions?.code).toBe('unauthorized');
  expect(result.body.errors?.[0]?.message).toEqual(expect.any(String));
  expect(result.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
}

function expectGraphQLOk(result: GraphQLResult, operation: GraphQLOperation): void {
  expect(result.body.errors).toBeUndefined();
  expect(result.status).toBe(200);
  operation.expectData(result.body.data);
}

// ---------------------------------------------------------------------------------------------

interface KeyedGateway {
  readonly name: string;
  readonly env: () => Record<string, string>;
  readonly rightKeys: ReadonlyArray<readonly [label: string, key: string]>;
  readonly wrongKeys: ReadonlyArray<readonly [label: string, key: string]>;
}

const keyedGateways: readonly KeyedGateway[] = [
  {
    name: 'a gateway keyed through API_KEYS',
    env: () => ({ API_KEYS: `${KEY_ONE},${KEY_TWO}` }),
    rightKeys: [
      ['the first key of API_KEYS', KEY_ONE],
      ['the second key of API_KEYS', KEY_TWO],
    ],
    wrongKeys: [
      ['an unknown key', UNKNOWN_KEY],
      ['a configured key with one character changed', `${KEY_ONE.slice(0, -1)}X`],
      ['a key configured on another gateway', FILE_PLAIN_KEY],
    ],
  },
  {
    name: 'a gateway keyed through API_KEYS_FILE',
    env: () => ({
      API_KEYS_FILE: writeKeysFile({
        keys: [
          // An upper-case digest: hex is hex.
          { name: 'hashed-bot', key_sha256: sha256(FILE_HASHED_KEY).toUpperCase() },
          { name: 'plain-bot', key: FILE_PLAIN_KEY, limits: { generate: 50, generate_batch: 20, other: 500 } },
        ],
      }),
    }),
    rightKeys: [
      ['the key whose SHA-256 is in the file', FILE_HASHED_KEY],
      ['the key written plainly in the file', FILE_PLAIN_KEY],
    ],
    wrongKeys: [
      ['an unknown key', UNKNOWN_KEY],
      ['the SHA-256 digest written in the file', sha256(FILE_HASHED_KEY)],
      ['a key configured on another gateway', KEY_ONE],
    ],
  },
];

let fake: FakeUpstream;
const upstreamEnv = () => ({ OPENAI_API_KEY: UPSTREAM_KEY, OPENAI_BASE_URL: fake.url, UPSTREAM_TIMEOUT_MS: '2000' });

beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
});

describe.each(keyedGateways)('$name', (config) => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { ...upstreamEnv(), ...config.env() } });
  });
  afterAll(async () => {
    await gateway.close();
  });

  describe.each(restRoutes)('REST $label', (route) => {
    if (route.open) {
      it('answers 200 without a key: it is a probe', async () => {
        expectRestOk(await callRest(gateway, route, {}), route);
      });

      it.each(config.wrongKeys)('answers 200 with %s, without echoing it', async (_label, key) => {
        const response = await callRest(gateway, route, bearer(key));
        expectRestOk(response, route);
        expectKeyNotEchoed(response, key);
      });
    } else {
      it('answers 401 unauthorized with a Bearer challenge without a key', async () => {
        expectRestUnauthorized(await callRest(gateway, route, {}), route);
      });

      it.each(config.wrongKeys)('answers 401 unauthorized with %s, without echoing it', async (_label, key) => {
        const response = await callRest(gateway, route, bearer(key));
        expectRestUnauthorized(response, route);
        expectKeyNotEchoed(response, key);
      });
    }

    it.each(config.rightKeys)('answers normally with %s, without echoing it', async (_label, key) => {
      const response = await callRest(gateway, route, bearer(key));
      expectRestOk(response, route);
      expectKeyNotEchoed(response, key);
    });
  });

  describe.each(graphqlOperations)('GraphQL $label', (operation) => {
    it('answers HTTP 401 with code unauthorized without a key', async () => {
      expectGraphQLUnauthorized(await gateway.execute(operation.document, operation.variables));
    });

    it.each(config.wrongKeys)('answers HTTP 401 with code unauthorized with %s, without echoing it', async (_label, key) => {
      const result = await gateway.execute(operation.document, operation.variables, bearer(key));
      expectGraphQLUnauthorized(result);
      expectKeyNotEchoed(result, key);
    });

    it.each(config.rightKeys)('answers normally with %s, without echoing it', async (_label, key) => {
      const result = await gateway.execute(operation.document, operation.variables, bearer(key));
      expectGraphQLOk(result, operation);
      expectKeyNotEchoed(result, key);
    });
  });

  it('does not warn in status that authentication is off', async () => {
    const result = await gateway.execute(StatusDocument, {}, bearer(config.rightKeys[0]![1]));
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.status.warnings).not.toEqual(expect.arrayContaining([expect.stringMatching(authOffWarning)]));
  });
});

describe('malformed Authorization headers (keys from API_KEYS)', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { ...upstreamEnv(), API_KEYS: `${KEY_ONE},${KEY_TWO}` } });
  });
  afterAll(async () => {
    await gateway.close();
  });

  const malformed: ReadonlyArray<readonly [string, string]> = [
    ['Basic credentials made of a right key', `Basic ${Buffer.from(`${KEY_ONE}:`).toString('base64')}`],
    ['the Basic scheme around a right key', `Basic ${KEY_ONE}`],
    ['a right key without a scheme', KEY_ONE],
    ['Bearer alone', 'Bearer'],
    ['Bearer and blanks', 'Bearer    '],
    ['Bearer with two right keys', `Bearer ${KEY_ONE} ${KEY_TWO}`],
    ['Bearer with a right key and a stray token', `Bearer ${KEY_ONE} extra`],
    ['a right key with the scheme missing its space', `Bearer${KEY_ONE}`],
  ];
  const models = restRoutes.find((route) => route.path === '/models')!;
  const generate = restRoutes.find((route) => route.path === '/generate')!;

  it.each(malformed)('REST answers 401 unauthorized to %s', async (_label, header) => {
    for (const route of [models, generate]) {
      const response = await callRest(gateway, route, { authorization: header });
      expectRestUnauthorized(response, route);
      expectKeyNotEchoed(response, KEY_ONE);
      expectKeyNotEchoed(response, KEY_TWO);
    }
  });

  it.each(malformed)('GraphQL answers HTTP 401 unauthorized to %s', async (_label, header) => {
    const result = await gateway.execute(GenerateDocument, { prompt: 'hello', model_id: MODEL }, { authorization: header });
    expectGraphQLUnauthorized(result);
    expectKeyNotEchoed(result, KEY_ONE);
    expectKeyNotEchoed(result, KEY_TWO);
  });

  it('accepts the Bearer scheme in any letter case, as HTTP auth schemes are case-insensitive', async () => {
    const response = await callRest(gateway, models, { authorization: `bearer ${KEY_TWO}` });
    expectRestOk(response, models);
  });

  it('never calls the upstream for a refused generate', async () => {
    fake.reset();
    await callRest(gateway, generate, { authorization: `Bearer ${UNKNOWN_KEY}` });
    await gateway.execute(GenerateDocument, { prompt: 'hello', model_id: MODEL }, { authorization: 'Bearer' });
    expect(fake.requests.filter((request) => request.method === 'POST')).toEqual([]);
  });
});

describe('the contract and the gateway agree on who needs a key', () => {
  it('documents the 401 that /openapi.json and /openapi.yaml answer without a key', () => {
    // The gateway (and the README) require a key for everything under /api/v1 but the two probes; the contract
    // marks the documents `security: []` and documents no 401 for them, so a client generated from it is misled.
    for (const documentPath of ['/openapi.json', '/openapi.yaml']) {
      const operation = contractDocument.paths[documentPath]?.get as { security?: unknown[]; responses: Record<string, unknown> };
      expect({ path: documentPath, has401: '401' in operation.responses }).toEqual({ path: documentPath, has401: true });
      expect({ path: documentPath, security: operation.security }).not.toEqual({ path: documentPath, security: [] });
    }
  });

  it('documents the Bearer challenge on every 401', () => {
    expect(contractDocument.components.responses.Unauthorized?.headers).toHaveProperty('WWW-Authenticate');
  });
});

describe('a gateway with no keys configured', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { ...upstreamEnv(), API_KEYS: undefined, API_KEYS_FILE: undefined } });
  });
  afterAll(async () => {
    await gateway.close();
  });

  it.each(restRoutes.map((route) => [route.label, route] as const))('answers %s without a key', async (_label, route) => {
    expectRestOk(await callRest(gateway, route, {}), route);
  });

  it.each(graphqlOperations.map((operation) => [operation.label, operation] as const))(
    'answers GraphQL %s without a key',
    async (_label, operation) => {
      expectGraphQLOk(await gateway.execute(operation.document, operation.variables), operation);
    },
  );

  it('ignores whatever key a caller sends', async () => {
    const models = restRoutes.find((route) => route.path === '/models')!;
    const response = await callRest(gateway, models, bearer(UNKNOWN_KEY));
    expectRestOk(response, models);
    expectKeyNotEchoed(response, UNKNOWN_KEY);
  });

  it('warns in GraphQL status that authentication is off', async () => {
    const result = await gateway.execute(StatusDocument);
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.status.warnings).toEqual(expect.arrayContaining([expect.stringMatching(authOffWarning)]));
  });

  it('warns in REST GET /status that authentication is off', async () => {
    const response = await rest(gateway, 'GET', '/status');
    expectToMatchContract(response, '/status', 'get');
    expect(response.status).toBe(200);
    expect(response.body.warnings).toEqual(expect.arrayContaining([expect.stringMatching(authOffWarning)]));
  });
});
