/**
 * Federation's `_entities` is a root field like any other: the rate limit counts it as an 'other'
 * operation, and an unexpected error in an entity's reference resolver is logged with the request id
 * and masked as internal_error, one entity at a time.
 */
import pino from 'pino';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { startGateway, type GraphQLResult, type RunningGateway } from '../support/start-gateway';

const OTHER_LIMIT = 2;
const RATE_KEY = 'entities-rate-key-0123456789abcdef';
const MASK_KEY = 'entities-mask-key-0123456789abcdef';
const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

const entitiesQuery = 'query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Model { id name } } }';

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly requestId?: string;
  readonly field?: string;
  readonly err?: { readonly message?: string };
}

describe('federation _entities', () => {
  let fake: FakeUpstream;
  let llmop: RunningGateway;
  const logs: LogLine[] = [];

  const entities = (representations: unknown[], key: string): Promise<GraphQLResult> =>
    llmop.graphql(entitiesQuery, { representations }, auth(key));

  beforeAll(async () => {
    fake = await startFakeUpstream();
    const logger = pino({ level: 'error' }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
    llmop = await startGateway({
      env: {
        OPENAI_API_KEY: 'sk-test',
        OPENAI_BASE_URL: fake.url,
        API_KEYS: [RATE_KEY, MASK_KEY].join(','),
        RATE_LIMIT_DEFAULT: String(OTHER_LIMIT),
      },
      logger,
    });
  });

  afterAll(async () => {
    await llmop.close();
    await fake.close();
  });

  it('is refused with rate_limit_exceeded past the limit for other operations, with the rate-limit headers', async () => {
    const representations = [{ __typename: 'Model', id: 'gpt-4o' }];
    for (let call = 1; call <= OTHER_LIMIT; call++) {
      const allowed = await entities(representations, RATE_KEY);
      expect(allowed.body).toEqual({ data: { _entities: [{ id: 'gpt-4o', name: 'GPT-4o' }] } });
      expect(allowed.headers.get('x-ratelimit-remaining')).toBe(String(OTHER_LIMIT - call));
    }
    const refused = await entities(representations, RATE_KEY);
    expect(refused.status).toBe(200);
    expect(refused.body.data).toBeNull();
    expect(refused.body.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([[['_entities'], 'rate_limit_exceeded']]);
    expect(refused.headers.get('x-ratelimit-limit')).toBe(String(OTHER_LIMIT));
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  });

  it('masks an unexpected error in the Model reference resolver as internal_error naming the request id, and logs it', async () => {
    // `_Any` takes any JSON, so a number can reach the registry as a model id; a string id never throws.
    const result = await entities(
      [
        { __typename: 'Model', id: 'gpt-4o' },
        { __typename: 'Model', id: 42 },
      ],
      MASK_KEY,
    );
    const requestId = result.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    expect(result.status).toBe(200);
    // The entity that resolved survives next to the one that failed.
    expect(result.body.data).toEqual({ _entities: [{ id: 'gpt-4o', name: 'GPT-4o' }, null] });
    expect(result.body.errors).toEqual([
      {
        message: 'Internal server error',
        locations: expect.any(Array),
        path: ['_entities', 1],
        extensions: { code: 'internal_error', details: `request id ${requestId}` },
      },
    ]);
    const logged = logs.filter((line) => line.requestId === requestId);
    expect(logged).toEqual([
      expect.objectContaining({
        msg: 'unexpected error in resolver',
        field: 'Query._entities',
        err: expect.objectContaining({ message: expect.any(String) }),
      }),
    ]);
    expect(logged[0]?.level).toBeGreaterThanOrEqual(50);
  });
});
