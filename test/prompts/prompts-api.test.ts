/**
 * Versioned prompts as their users meet them (issue 14): templates saved as versions 1, 2, 3 of a
 * name over REST (/prompts...) and GraphQL (prompts, prompt, prompt_version, create_prompt_version),
 * and generations filled from them (generate_from_prompt, POST /prompts/{name}/generate) that the
 * ledger records with source `prompt` and the version as prompt_ref. Against the embedded SQLite
 * ledger and a real PostgreSQL, through the real gateway in front of a fake OpenAI-compatible upstream.
 */
import { type LedgerDatabase, openDatabase } from '../../src/storage/database';
import { PromptRepository } from '../../src/storage/prompt-repository';
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { type FakeUpstream, type RecordedRequest, startFakeUpstream } from '../support/fake-openai-upstream';
import {
  CHAT_MODEL,
  COMPLETION_MODEL,
  type FreshLedger,
  generationCalls,
  getChecked,
  LEDGER_MODELS,
  type LedgerGeneration,
  type LedgerSetup,
  ledgerCatalog,
  postgresLedgerSetup,
  sqliteLedgerSetup,
} from '../support/ledger-fixtures';
import { startGateway, type RunningGateway } from '../support/start-gateway';

interface PromptVersion {
  name: string;
  version: number;
  template: string;
  variables: string[];
  description: string | null;
  model_id: string | null;
  parameters: { max_tokens?: number | null; temperature?: number | null; top_p?: number | null } | null;
  created_at: string;
}

const PROMPT_FIELDS = 'name version template variables description model_id parameters { max_tokens temperature top_p } created_at';
const GENERATE_FIELDS = `text model_id prompt parameters { max_tokens temperature top_p }
  metadata { generation_id prompt_ref { name version } }`;

const createMutation = `mutation ($name: String!, $template: String!, $description: String, $model_id: String, $parameters: PromptParametersInput) {
  create_prompt_version(name: $name, template: $template, description: $description, model_id: $model_id, parameters: $parameters) { ${PROMPT_FIELDS} }
}`;
const generateMutation = `mutation ($name: String!, $version: Int, $variables: JSONObject!, $model_id: String, $max_tokens: Int, $temperature: Float, $top_p: Float) {
  generate_from_prompt(name: $name, version: $version, variables: $variables, model_id: $model_id, max_tokens: $max_tokens, temperature: $temperature, top_p: $top_p) { ${GENERATE_FIELDS} }
}`;

/** What GraphQL answers for a version: REST leaves out the parameters a version does not set, GraphQL says null. */
const withoutNullParameters = (version: PromptVersion): PromptVersion => ({
  ...version,
  parameters:
    version.parameters === null
      ? null
      : Object.fromEntries(Object.entries(version.parameters).filter(([, value]) => value !== null && value !== undefined)),
});

/** The prompt text the fake upstream received: the chat's user message, or the completion's prompt. */
const promptSent = (request: RecordedRequest): string => request.body.messages?.[0]?.content ?? request.body.prompt;

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('versioned prompts on $name', (setup) => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  let ledger: FreshLedger;

  const create = async (body: unknown): Promise<RestResponse> => {
    const response = await rest(gateway, 'POST', '/prompts', body);
    expectToMatchContract(response, '/prompts', 'post');
    return response;
  };
  const createOk = async (body: Record<string, unknown>): Promise<PromptVersion> => {
    const response = await create(body);
    expect([response.status, response.body.error]).toEqual([201, undefined]);
    return response.body as PromptVersion;
  };
  const versionsOf = async (name: string): Promise<RestResponse> => {
    const response = await rest(gateway, 'GET', `/prompts/${encodeURIComponent(name)}`);
    expectToMatchContract(response, '/prompts/{name}', 'get');
    return response;
  };
  const versionOf = async (name: string, version: number | string): Promise<RestResponse> => {
    const response = await rest(gateway, 'GET', `/prompts/${encodeURIComponent(name)}/versions/${version}`);
    expectToMatchContract(response, '/prompts/{name}/versions/{version}', 'get');
    return response;
  };
  const generate = async (name: string, body: unknown): Promise<RestResponse> => {
    const response = await rest(gateway, 'POST', `/prompts/${encodeURIComponent(name)}/generate`, body);
    expectToMatchContract(response, '/prompts/{name}/generate', 'post');
    return response;
  };
  const generateOk = async (name: string, body: Record<string, unknown>) => {
    const response = await generate(name, body);
    expect([response.status, response.body.error]).toEqual([200, undefined]);
    return response.body;
  };
  const ledgerRow = async (generationId: string): Promise<LedgerGeneration> => {
    const response = await getChecked<LedgerGeneration>(gateway, '/generations/{generation_id}', `/generations/${generationId}`);
    expect(response.status).toBe(200);
    return response.body;
  };
  /** The generation requests the fake upstream received while `action` ran. */
  const upstreamCallsDuring = async (action: () => Promise<unknown>): Promise<RecordedRequest[]> => {
    const before = generationCalls(fake).length;
    await action();
    return generationCalls(fake).slice(before);
  };

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    ledger = await setup.freshLedger();
    gateway = await startGateway({ catalog: ledgerCatalog(fake), env: ledger.env });
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
    await setup.tearDown();
  }, 60_000);

  it('saves versions 1, 2 and 3 of a name over REST and GraphQL, never changes them, and lists them newest first', async () => {
    const first = await createOk({
      name: 'support-reply',
      template: 'Reply to this {{product}} ticket: {{ticket}}',
      description: 'First answer to a ticket',
      model_id: CHAT_MODEL,
      parameters: { max_tokens: 5, temperature: 0.3 },
    });
    expect(first).toEqual({
      name: 'support-reply',
      version: 1,
      template: 'Reply to this {{product}} ticket: {{ticket}}',
      variables: ['product', 'ticket'],
      description: 'First answer to a ticket',
      model_id: CHAT_MODEL,
      parameters: { max_tokens: 5, temperature: 0.3 },
      created_at: expect.any(String),
    });

    const second = await gateway.graphql(createMutation, { name: 'support-reply', template: 'Answer {{ticket}} briefly.' });
    expect(second.body.errors).toBeUndefined();
    expect(second.body.data.create_prompt_version).toEqual({
      name: 'support-reply',
      version: 2,
      template: 'Answer {{ticket}} briefly.',
      variables: ['ticket'],
      description: null,
      model_id: null,
      parameters: null,
      created_at: expect.any(String),
    });

    const third = await createOk({ name: 'support-reply', template: 'Be kind. {{ticket}}', model_id: COMPLETION_MODEL, parameters: {} });
    expect([third.version, third.parameters]).toEqual([3, null]);

    const listed = await versionsOf('support-reply');
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({
      name: 'support-reply',
      versions: [third, withoutNullParameters(second.body.data.create_prompt_version), first],
    });
    const one = await versionOf('support-reply', 1);
    expect([one.status, one.body]).toEqual([200, first]);

    const viaGraphql = await gateway.graphql(
      `query { prompt(name: "support-reply") { name versions { ${PROMPT_FIELDS} } }
        prompt_version(name: "support-reply", version: 1) { ${PROMPT_FIELDS} } }`,
    );
    expect(viaGraphql.body.errors).toBeUndefined();
    expect({
      name: viaGraphql.body.data.prompt.name,
      versions: viaGraphql.body.data.prompt.versions.map(withoutNullParameters),
    }).toEqual(listed.body);
    expect(withoutNullParameters(viaGraphql.body.data.prompt_version)).toEqual(first);
  });

  it('lists variables in order of first use, once each, whatever the spacing inside the braces', async () => {
    const version = await createOk({ name: 'order.of-use_1', template: '{{ b }} and {{a}}, then {{b}} again, {{c.d}} and {{ a }}' });
    expect(version.variables).toEqual(['b', 'a', 'c.d']);
    expect((await createOk({ name: 'no-variables', template: 'Plain text, {single} braces.' })).variables).toEqual([]);
  });

  it('lists the latest version of every prompt, the most recently changed first, over REST and GraphQL', async () => {
    await createOk({ name: 'latest-a', template: 'A1' });
    await createOk({ name: 'latest-b', template: 'B1' });
    await createOk({ name: 'latest-a', template: 'A2' });
    const response = await rest(gateway, 'GET', '/prompts');
    expectToMatchContract(response, '/prompts', 'get');
    expect(response.status).toBe(200);
    const prompts = response.body.prompts as PromptVersion[];
    const names = prompts.map((prompt) => prompt.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.indexOf('latest-a')).toBeLessThan(names.indexOf('latest-b'));
    expect(prompts.find((prompt) => prompt.name === 'latest-a')).toMatchObject({ version: 2, template: 'A2' });
    expect(prompts.find((prompt) => prompt.name === 'latest-b')).toMatchObject({ version: 1, template: 'B1' });
    const times = prompts.map((prompt) => Date.parse(prompt.created_at));
    expect(times).toEqual([...times].sort((left, right) => right - left));

    const viaGraphql = await gateway.graphql(`query { prompts { prompts { ${PROMPT_FIELDS} } } }`);
    expect(viaGraphql.body.errors).toBeUndefined();
    expect(viaGraphql.body.data.prompts.prompts.map(withoutNullParameters)).toEqual(prompts);
  });

  it('refuses bad versions with 400 naming the field, and an unknown model with 404 model_not_found, saving nothing', async () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ name: 'Upper-case', template: 'x' }, 'name'],
      [{ name: '-leading-dash', template: 'x' }, 'name'],
      [{ name: 'has space', template: 'x' }, 'name'],
      [{ name: 'slash/name', template: 'x' }, 'name'],
      [{ name: '', template: 'x' }, 'name'],
      [{ name: `a${'b'.repeat(64)}`, template: 'x' }, 'name'],
      [{ name: 'refused', template: '' }, 'template'],
      [{ name: 'refused', template: 'x'.repeat(10_001) }, 'template'],
      [{ name: 'refused', template: 'x', description: 'd'.repeat(2001) }, 'description'],
      [{ name: 'refused', template: 'x', parameters: { max_tokens: 0 } }, 'max_tokens'],
      [{ name: 'refused', template: 'x', parameters: { max_tokens: 2049 } }, 'max_tokens'],
      [{ name: 'refused', template: 'x', parameters: { temperature: 2.5 } }, 'temperature'],
      [{ name: 'refused', template: 'x', parameters: { top_p: -0.1 } }, 'top_p'],
      [{ name: 'refused', template: 'x', parameters: { top_p: 'high' } }, 'top_p'],
      [{ name: 'refused', template: 'x', model_id: '' }, 'model_id'],
      [{ template: 'x' }, 'name'],
      [{ name: 'refused' }, 'template'],
    ];
    for (const [body, field] of bad) {
      const response = await create(body);
      expect({ body, status: response.status, error: response.body.error }).toEqual({ body, status: 400, error: 'validation_error' });
      expect(`${response.body.message} ${response.body.details}`).toContain(field);
    }
    const unknownModel = await create({ name: 'refused', template: 'x', model_id: 'no-such-model' });
    expect([unknownModel.status, unknownModel.body.error]).toEqual([404, 'model_not_found']);
    const viaGraphql = await gateway.graphql(createMutation, { name: 'refused', template: 'x', model_id: 'no-such-model' });
    expect(viaGraphql.body.errors?.[0]?.extensions?.code).toBe('model_not_found');
    expect((await versionsOf('refused')).status).toBe(404);

    // The limits themselves are accepted.
    const atLimits = await createOk({
      name: `a${'b'.repeat(63)}`,
      template: 'x'.repeat(10_000),
      description: 'd'.repeat(2000),
      parameters: { max_tokens: 2048, temperature: 2, top_p: 0 },
    });
    expect(atLimits.parameters).toEqual({ max_tokens: 2048, temperature: 2, top_p: 0 });
  });

  it("fills the newest version's template with the variables and generates with its model and parameters", async () => {
    await createOk({ name: 'fill-me', template: 'Old version {{ticket}}', model_id: COMPLETION_MODEL });
    await createOk({
      name: 'fill-me',
      template: 'Reply about the {{product}}: {{ticket}} ({{product}})',
      model_id: CHAT_MODEL,
      parameters: { max_tokens: 4, temperature: 0.3, top_p: 0.9 },
    });
    let answer: any;
    const [call] = await upstreamCallsDuring(async () => {
      answer = await generateOk('fill-me', {
        variables: { product: 'router', ticket: 'it blinks $& $1 red', unused: 'ignored' },
      });
    });
    const filled = 'Reply about the router: it blinks $& $1 red (router)';
    expect(promptSent(call!)).toBe(filled);
    expect(call!.body).toMatchObject({ model: CHAT_MODEL, max_tokens: 4, temperature: 0.3, top_p: 0.9 });
    expect(answer).toMatchObject({
      prompt: filled,
      model_id: CHAT_MODEL,
      parameters: { max_tokens: 4, temperature: 0.3, top_p: 0.9 },
      metadata: { prompt_ref: { name: 'fill-me', version: 2 } },
    });

    const row = await ledgerRow(answer.metadata.generation_id);
    expect(row).toMatchObject({
      source: 'prompt',
      prompt_ref: { name: 'fill-me', version: 2 },
      prompt: filled,
      model_id: CHAT_MODEL,
      parameters: { max_tokens: 4, temperature: 0.3, top_p: 0.9 },
      status: 'succeeded',
      evaluation_id: null,
    });
  });

  it("lets the request override the version's model and parameters, and pick an older version", async () => {
    await createOk({ name: 'override-me', template: 'One {{x}}', model_id: CHAT_MODEL, parameters: { max_tokens: 4, temperature: 0.3 } });
    await createOk({ name: 'override-me', template: 'Two {{x}}', model_id: CHAT_MODEL, parameters: { max_tokens: 6 } });
    let answer: any;
    const [call] = await upstreamCallsDuring(async () => {
      answer = await generateOk('override-me', { version: 1, variables: { x: 'y' }, model_id: COMPLETION_MODEL, max_tokens: 2 });
    });
    expect(promptSent(call!)).toBe('One y');
    // The request's model and max_tokens, the version's temperature, the gateway's top_p.
    expect(call!.body).toMatchObject({ model: COMPLETION_MODEL, max_tokens: 2, temperature: 0.3, top_p: 1 });
    expect(answer).toMatchObject({
      prompt: 'One y',
      model_id: COMPLETION_MODEL,
      parameters: { max_tokens: 2, temperature: 0.3, top_p: 1 },
      metadata: { prompt_ref: { name: 'override-me', version: 1 } },
    });
    expect((await ledgerRow(answer.metadata.generation_id)).prompt_ref).toEqual({ name: 'override-me', version: 1 });

    // Over GraphQL: the newest version, with the gateway's defaults where the version sets none.
    const viaGraphql = await gateway.graphql(generateMutation, { name: 'override-me', variables: { x: 'z' }, temperature: 0 });
    expect(viaGraphql.body.errors).toBeUndefined();
    expect(viaGraphql.body.data.generate_from_prompt).toMatchObject({
      prompt: 'Two z',
      model_id: CHAT_MODEL,
      parameters: { max_tokens: 6, temperature: 0, top_p: 1 },
      metadata: { prompt_ref: { name: 'override-me', version: 2 } },
    });
    const row = await ledgerRow(viaGraphql.body.data.generate_from_prompt.metadata.generation_id);
    expect([row.source, row.prompt_ref, row.prompt]).toEqual(['prompt', { name: 'override-me', version: 2 }, 'Two z']);
  });

  it('refuses a missing variable (naming it), a value that is not a string, and a prompt without any model, before any upstream call', async () => {
    await createOk({ name: 'strict', template: '{{greeting}}, {{name}}! {{closing}}', model_id: CHAT_MODEL });
    await createOk({ name: 'modelless', template: 'Hello {{name}}' });
    const calls = await upstreamCallsDuring(async () => {
      const missing = await generate('strict', { variables: { greeting: 'Hi' } });
      expect([missing.status, missing.body.error]).toEqual([400, 'validation_error']);
      expect(missing.body.message).toContain('name, closing');
      expect(missing.body.details).toContain('{{name}}');

      for (const [value, word] of [
        [42, 'number'],
        [null, 'null'],
        [['a'], 'array'],
        [{ nested: 'x' }, 'object'],
      ] as const) {
        const refused = await generate('strict', { variables: { greeting: 'Hi', name: value, closing: 'Bye' } });
        expect({ value, status: refused.status, error: refused.body.error }).toEqual({ value, status: 400, error: 'validation_error' });
        expect(refused.body.details).toContain('variables.name');
        expect(refused.body.details).toContain(word);
      }
      for (const body of [{}, { variables: 'text' }, { variables: ['a'] }]) {
        const refused = await generate('strict', body);
        expect({ body, status: refused.status, error: refused.body.error }).toEqual({ body, status: 400, error: 'validation_error' });
        expect(`${refused.body.message} ${refused.body.details}`).toContain('variables');
      }
      const badVersion = await generate('strict', { version: 0, variables: {} });
      expect([badVersion.status, badVersion.body.error]).toEqual([400, 'validation_error']);

      const noModel = await generate('modelless', { variables: { name: 'Ada' } });
      expect([noModel.status, noModel.body.error]).toEqual([400, 'validation_error']);
      expect(noModel.body.details).toContain('model_id');

      const graphqlMissing = await gateway.graphql(generateMutation, { name: 'strict', variables: { greeting: 'Hi', closing: 'Bye' } });
      expect(graphqlMissing.body.errors?.[0]?.extensions?.code).toBe('validation_error');
      expect(graphqlMissing.body.errors?.[0]?.message).toContain('name');
      const graphqlNotString = await gateway.graphql(generateMutation, { name: 'strict', variables: { greeting: true } });
      expect(graphqlNotString.body.errors?.[0]?.extensions?.code).toBe('validation_error');
    });
    expect(calls).toEqual([]);

    // With the model given by the request, the model-less version generates.
    const answer = await generateOk('modelless', { variables: { name: 'Ada' }, model_id: CHAT_MODEL });
    expect([answer.prompt, answer.metadata.prompt_ref]).toEqual(['Hello Ada', { name: 'modelless', version: 1 }]);
  });

  it('answers 404 prompt_not_found for an unknown prompt or version, over REST and GraphQL, and 404 model_not_found for an unknown override', async () => {
    const unknownName = await versionsOf('never-saved');
    expect([unknownName.status, unknownName.body.error]).toEqual([404, 'prompt_not_found']);
    expect(unknownName.body.message).toContain('never-saved');
    await createOk({ name: 'has-one', template: 'Only {{x}}', model_id: CHAT_MODEL });
    const unknownVersion = await versionOf('has-one', 2);
    expect([unknownVersion.status, unknownVersion.body.error]).toEqual([404, 'prompt_not_found']);
    expect(unknownVersion.body.message).toContain('version 2');
    const notANumber = await versionOf('has-one', 'latest');
    expect([notANumber.status, notANumber.body.error]).toEqual([400, 'validation_error']);

    for (const [name, body] of [
      ['never-saved', { variables: {} }],
      ['has-one', { version: 7, variables: { x: 'y' } }],
    ] as const) {
      const refused = await generate(name, body);
      expect({ name, status: refused.status, error: refused.body.error }).toEqual({ name, status: 404, error: 'prompt_not_found' });
    }
    const unknownOverride = await generate('has-one', { variables: { x: 'y' }, model_id: 'no-such-model' });
    expect([unknownOverride.status, unknownOverride.body.error]).toEqual([404, 'model_not_found']);

    const viaGraphql = await gateway.graphql('query { prompt(name: "never-saved") { name } }');
    expect(viaGraphql.body.errors?.[0]?.extensions?.code).toBe('prompt_not_found');
    const versionViaGraphql = await gateway.graphql('query { prompt_version(name: "has-one", version: 2) { name } }');
    expect(versionViaGraphql.body.errors?.[0]?.extensions?.code).toBe('prompt_not_found');
  });

  it('gives concurrent creates of one name distinct, consecutive versions, from the gateway and from a second connection alike', async () => {
    const second: LedgerDatabase = await openDatabase(ledger.settings);
    try {
      const replica = new PromptRepository(second);
      const template = (index: number) => `Concurrent ${index} {{x}}`;
      const created = await Promise.all([
        ...Array.from({ length: 12 }, (_, index) =>
          createOk({ name: 'raced', template: template(index) }).then((version) => version.version),
        ),
        ...Array.from({ length: 6 }, (_, index) =>
          replica
            .create({
              name: 'raced',
              template: template(100 + index),
              variables: ['x'],
              description: null,
              modelId: null,
              parameters: null,
            })
            .then((version) => version.version),
        ),
      ]);
      expect([...created].sort((left, right) => left - right)).toEqual(Array.from({ length: 18 }, (_, index) => index + 1));

      const listed = await versionsOf('raced');
      const versions = listed.body.versions as PromptVersion[];
      expect(versions.map((version) => version.version)).toEqual(Array.from({ length: 18 }, (_, index) => 18 - index));
      // Each number holds the template its create was answered with.
      expect(new Set(versions.map((version) => version.template)).size).toBe(18);
      expect(await replica.find('raced')).toMatchObject({ version: 18 });
    } finally {
      await second.close();
    }
  });
});

describe('prompts count against the limits of their kind', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { RATE_LIMIT_GENERATE: '2', RATE_LIMIT_DEFAULT: '1000', RATE_LIMIT_WINDOW_MS: '600000' },
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });

  it('counts generate_from_prompt as a generate (429 past the generate limit) and the other prompt operations as other', async () => {
    const created = await rest(gateway, 'POST', '/prompts', { name: 'limited', template: 'Hi {{x}}', model_id: CHAT_MODEL });
    expect([created.status, created.headers.get('x-ratelimit-limit')]).toEqual([201, '1000']);
    for (const remaining of ['1', '0']) {
      const served = await rest(gateway, 'POST', '/prompts/limited/generate', { variables: { x: 'y' } });
      expect([served.status, served.headers.get('x-ratelimit-limit'), served.headers.get('x-ratelimit-remaining')]).toEqual([
        200,
        '2',
        remaining,
      ]);
    }
    const refused = await rest(gateway, 'POST', '/prompts/limited/generate', { variables: { x: 'y' } });
    expectToMatchContract(refused, '/prompts/{name}/generate', 'post');
    expect([refused.status, refused.body.error]).toEqual([429, 'rate_limit_exceeded']);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const viaGraphql = await gateway.graphql(generateMutation, { name: 'limited', variables: { x: 'y' } });
    expect(viaGraphql.body.errors?.[0]?.extensions?.code).toBe('rate_limit_exceeded');
    expect(generationCalls(fake)).toHaveLength(2);
    const listed = await rest(gateway, 'GET', '/prompts');
    expect([listed.status, listed.headers.get('x-ratelimit-limit')]).toEqual([200, '1000']);
  });
});

describe('prompts with the ledger off (LEDGER=off)', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { LEDGER: 'off' } });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('answers 503 ledger_unavailable: versions are kept in the ledger database', async () => {
    const answers = [
      await rest(gateway, 'GET', '/prompts'),
      await rest(gateway, 'POST', '/prompts', { name: 'anything', template: 'x' }),
      await rest(gateway, 'GET', '/prompts/anything'),
      await rest(gateway, 'GET', '/prompts/anything/versions/1'),
      await rest(gateway, 'POST', '/prompts/anything/generate', { variables: {} }),
    ];
    expectToMatchContract(answers[0]!, '/prompts', 'get');
    expectToMatchContract(answers[1]!, '/prompts', 'post');
    expectToMatchContract(answers[2]!, '/prompts/{name}', 'get');
    expectToMatchContract(answers[3]!, '/prompts/{name}/versions/{version}', 'get');
    expectToMatchContract(answers[4]!, '/prompts/{name}/generate', 'post');
    expect(answers.map((answer) => [answer.status, answer.body.error])).toEqual(Array(5).fill([503, 'ledger_unavailable']));
  });
});
