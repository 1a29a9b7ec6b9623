/**
 * Human feedback as its users meet it (issue 13): people rate, comment on and correct generations
 * over REST (/feedback) and GraphQL (submit_feedback, feedback, feedback_summary,
 * Generation.feedback); members work on their own generations only; summaries per model and per
 * prompt version; JSON Lines exports that OpenAI's fine-tuning accepts. Against the embedded SQLite
 * ledger and a real PostgreSQL, through the real gateway in front of a fake OpenAI-compatible upstream.
 */
import pino from 'pino';
import { type DatabaseSettings, openDatabase } from '../../src/storage/database';
import { newGenerationId } from '../../src/storage/generation-id';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import { expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { checkFineTuningJsonl } from '../support/fine-tuning-format';
import {
  ADMIN_KEY,
  bearer,
  CHAT_MODEL,
  COMPLETION_MODEL,
  FILE_KEYS,
  getChecked,
  LEDGER_MODELS,
  type LedgerSetup,
  ledgerCatalog,
  postgresLedgerSetup,
  sqliteLedgerSetup,
  writeKeysFile,
} from '../support/ledger-fixtures';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const { alice, bob, carol } = FILE_KEYS;
const asAdmin = bearer(ADMIN_KEY);
const asAlice = bearer(alice.key); // member
const asBob = bearer(bob.key); // member
const asCarol = bearer(carol.key); // admin from the file

interface Feedback {
  id: string;
  generation_id: string;
  model_id: string;
  caller: string;
  score: number | null;
  thumbs: 'up' | 'down' | null;
  comment: string | null;
  correction: string | null;
  tags: string[];
  created_at: string;
}

const FEEDBACK_FIELDS = 'id generation_id model_id caller score thumbs comment correction tags created_at';
const submitMutation = `mutation ($generation_id: String!, $score: Float, $thumbs: Thumbs, $comment: String, $correction: String, $tags: [String!]) {
  submit_feedback(generation_id: $generation_id, score: $score, thumbs: $thumbs, comment: $comment, correction: $correction, tags: $tags) { ${FEEDBACK_FIELDS} }
}`;

/** Writes a finished generation made from a prompt version (step 5 makes these; the ledger already records them). */
async function seedPromptGeneration(settings: DatabaseSettings, caller: string, version: number): Promise<string> {
  const database = await openDatabase(settings);
  const ledger = new LedgerRepository(database, { recordContent: true });
  const createdAt = new Date();
  const id = newGenerationId(createdAt);
  try {
    await ledger.start({
      id,
      requestId: `seed-${id}`,
      caller,
      team: null,
      source: 'prompt',
      modelId: CHAT_MODEL,
      provider: 'vllm',
      upstreamModel: CHAT_MODEL,
      prompt: `Reply to ticket ${version}`,
      promptRef: { name: 'support-reply', version },
      evaluationId: null,
      parameters: { maxTokens: 20, temperature: 0, topP: 1 },
      createdAt,
    });
    await ledger.finish(id, {
      status: 'succeeded',
      error: null,
      finishReason: 'stop',
      text: `Reply number ${version}`,
      inputTokens: 4,
      outputTokens: 3,
      costUsd: 0,
      latencyMs: 1,
      attempts: [],
    });
  } finally {
    await ledger.close();
    await database.close();
  }
  return id;
}

/** The export, as raw bytes (it is JSON Lines, not one JSON document). */
async function download(gateway: RunningGateway, query: string, headers: Record<string, string>) {
  const response = await fetch(`${gateway.url}/api/v1/feedback/export?${query}`, { headers });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

describe.each<LedgerSetup>([sqliteLedgerSetup(), postgresLedgerSetup()])('human feedback on $name', (setup) => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  /** Every log line of the gateway: at trace level it logs each ledger query's SQL. */
  const logLines: string[] = [];
  let promptGenerations: string[] = [];

  const generateOk = async (headers: Record<string, string>, prompt: string, model_id = CHAT_MODEL) => {
    const response = await rest(gateway, 'POST', '/generate', { prompt, model_id, max_tokens: 8 }, headers);
    expect(response.status).toBe(200);
    return { id: response.body.metadata.generation_id as string, text: response.body.text as string };
  };
  const submit = async (body: unknown, headers: Record<string, string>): Promise<RestResponse> => {
    const response = await rest(gateway, 'POST', '/feedback', body, headers);
    expectToMatchContract(response, '/feedback', 'post');
    return response;
  };
  const submitOk = async (body: Record<string, unknown>, headers: Record<string, string>): Promise<Feedback> => {
    const response = await submit(body, headers);
    expect([response.status, response.body.error]).toEqual([201, undefined]);
    return response.body as Feedback;
  };
  const list = async (query: Record<string, string | number>, headers: Record<string, string>) => {
    const response = await getChecked(gateway, '/feedback', '/feedback', query, headers);
    expect(response.status).toBe(200);
    return response.body as { feedback: Feedback[]; next_cursor: string | null };
  };
  const summary = async (query: Record<string, string>, headers: Record<string, string>) => {
    const response = await getChecked(gateway, '/feedback/summary', '/feedback/summary', query, headers);
    expect(response.status).toBe(200);
    return response.body as { group_by: string; rows: Array<Record<string, unknown>> };
  };

  beforeAll(async () => {
    await setup.setUp();
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    const ledger = await setup.freshLedger();
    promptGenerations = [
      await seedPromptGeneration(ledger.settings, alice.name, 1),
      await seedPromptGeneration(ledger.settings, alice.name, 2),
    ];
    const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
    gateway = await startGateway({
      catalog: ledgerCatalog(fake),
      env: { ...ledger.env, API_KEYS: ADMIN_KEY, API_KEYS_FILE: writeKeysFile([alice, bob, carol]), LOG_LEVEL: 'trace' },
      logger,
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
    await setup.tearDown();
  }, 60_000);

  it('records feedback over REST (201) and GraphQL: several pieces per generation, each kept, newest first', async () => {
    const generation = await generateOk(asAlice, 'Summarise: the printer is on fire.');
    const before = Date.now();
    const first = await submitOk(
      { generation_id: generation.id, thumbs: 'down', comment: 'Too vague', tags: ['support', 'urgent'] },
      asAlice,
    );
    expect(first).toEqual({
      id: expect.stringMatching(/^fb_[0-9a-z]+$/),
      generation_id: generation.id,
      model_id: CHAT_MODEL,
      caller: 'alice',
      score: null,
      thumbs: 'down',
      comment: 'Too vague',
      correction: null,
      tags: ['support', 'urgent'],
      created_at: expect.any(String),
    });
    expect(new Date(first.created_at).getTime()).toBeGreaterThanOrEqual(before - 1);

    // A second reviewer (an admin) over GraphQL.
    const second = await gateway.graphql(
      submitMutation,
      { generation_id: generation.id, score: 0.25, correction: 'Evacuate now.' },
      asCarol,
    );
    expect(second.body.errors).toBeUndefined();
    expect(second.body.data.submit_feedback).toMatchObject({
      generation_id: generation.id,
      caller: 'carol',
      score: 0.25,
      correction: 'Evacuate now.',
      tags: [],
    });

    const page = await list({ generation_id: generation.id }, asAdmin);
    expect(page.feedback.map((piece) => piece.id)).toEqual([second.body.data.submit_feedback.id, first.id]);
    expect(page.next_cursor).toBeNull();
    const viaGraphql = await gateway.graphql(
      `query ($id: String) { feedback(generation_id: $id) { feedback { ${FEEDBACK_FIELDS} } next_cursor } }`,
      { id: generation.id },
      asAdmin,
    );
    expect(viaGraphql.body.data.feedback).toEqual(page);
  });

  it('pages feedback newest first with a cursor that never repeats or skips, and refuses a forged cursor', async () => {
    const generation = await generateOk(asBob, 'Paging prompt');
    const given: string[] = [];
    for (let index = 0; index < 5; index += 1) given.push((await submitOk({ generation_id: generation.id, score: index / 10 }, asBob)).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { feedback: Feedback[]; next_cursor: string | null } = await list(
        { generation_id: generation.id, limit: 2, ...(cursor ? { cursor } : {}) },
        asBob,
      );
      seen.push(...page.feedback.map((piece) => piece.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...given].reverse());
    const forged = await rest(gateway, 'GET', '/feedback?cursor=bm90LWEtY3Vyc29y', undefined, asBob);
    expect([forged.status, forged.body.error, forged.body.details]).toEqual([400, 'validation_error', expect.stringContaining('cursor')]);
  });

  it('refuses bad input with 400 (413 for an oversized body) naming the field, and records nothing', async () => {
    const generation = await generateOk(asAlice, 'Validation prompt');
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ generation_id: generation.id, score: 1.5 }, 'score'],
      [{ generation_id: generation.id, score: -0.1 }, 'score'],
      [{ generation_id: generation.id, thumbs: 'sideways' }, 'thumbs'],
      [{ generation_id: generation.id, correction: '' }, 'correction'],
      [{ generation_id: generation.id, correction: 'x'.repeat(100_001) }, 'correction'],
      [{ generation_id: generation.id, comment: 'x'.repeat(4001) }, 'comment'],
      [{ generation_id: generation.id, thumbs: 'up', tags: Array.from({ length: 21 }, (_, index) => `t${index}`) }, 'tags'],
      [{ generation_id: generation.id, thumbs: 'up', tags: ['x'.repeat(65)] }, 'tags[0]'],
      [{ generation_id: generation.id, thumbs: 'up', tags: [''] }, 'tags[0]'],
      [{ generation_id: generation.id, tags: ['only-tags'] }, 'at least one of score, thumbs, comment and correction'],
      [{ generation_id: generation.id }, 'at least one of score, thumbs, comment and correction'],
      [{ thumbs: 'up' }, 'generation_id'],
      [{ generation_id: generation.id, score: 'high' }, 'score'],
    ];
    for (const [body, field] of bad) {
      const response = await submit(body, asAlice);
      expect({ body, status: response.status, error: response.body.error }).toEqual({ body, status: 400, error: 'validation_error' });
      expect(`${response.body.message} ${response.body.details}`).toContain(field);
    }
    const tooLarge = await rest(gateway, 'POST', '/feedback', { generation_id: generation.id, comment: 'x'.repeat(2_000_000) }, asAlice);
    expect([tooLarge.status, tooLarge.body.error]).toEqual([413, 'payload_too_large']);
    expect((await list({ generation_id: generation.id }, asAdmin)).feedback).toEqual([]);

    // The limits themselves are accepted.
    await submitOk(
      {
        generation_id: generation.id,
        score: 1,
        comment: 'x'.repeat(4000),
        correction: 'y'.repeat(100_000),
        tags: Array.from({ length: 20 }, (_, index) => `${index}`.padEnd(64, 'z')),
      },
      asAlice,
    );
    await submitOk({ generation_id: generation.id, score: 0 }, asAlice);
  });

  it("lets a member rate only their own generations: another caller's answers 404 exactly like a missing one", async () => {
    const bobs = await generateOk(asBob, "Bob's prompt");
    const foreign = await submit({ generation_id: bobs.id, thumbs: 'up' }, asAlice);
    const missingId = `gen_${'0'.repeat(26)}`;
    const missing = await submit({ generation_id: missingId, thumbs: 'up' }, asAlice);
    expect(foreign.status).toBe(404);
    const normalise = (body: Record<string, unknown>, id: string) =>
      JSON.stringify({ ...body, timestamp: 'T' })
        .split(id)
        .join('<id>');
    expect(normalise(foreign.body, bobs.id)).toBe(normalise(missing.body, missingId));
    expect(foreign.body.error).toBe('generation_not_found');

    // Admins rate anyone's; the member still sees the admin's review of their own generation.
    await submitOk({ generation_id: bobs.id, comment: 'Reviewed by an admin' }, asCarol);
    const bobsView = await list({ generation_id: bobs.id }, asBob);
    expect(bobsView.feedback.map((piece) => piece.caller)).toEqual(['carol']);
    // Listing with another caller's generation is an empty page, not an error.
    expect(await list({ generation_id: bobs.id }, asAlice)).toEqual({ feedback: [], next_cursor: null });
    const alicesView = await list({ limit: 200 }, asAlice);
    expect(alicesView.feedback.length).toBeGreaterThan(0);
    expect(alicesView.feedback.every((piece) => piece.generation_id !== bobs.id)).toBe(true);

    const graphql = await gateway.graphql(submitMutation, { generation_id: bobs.id, thumbs: 'up' }, asAlice);
    expect(graphql.body.errors?.[0]?.extensions?.code).toBe('generation_not_found');
  });

  it('summarises per model and per prompt version: count, mean score (null without scores), thumbs and corrections', async () => {
    const [version1, version2] = promptGenerations as [string, string];
    await submitOk({ generation_id: version1, score: 0.5, thumbs: 'up' }, asAlice);
    await submitOk({ generation_id: version1, score: 1, correction: 'Better reply' }, asCarol);
    await submitOk({ generation_id: version2, thumbs: 'down' }, asAlice);
    const completion = await generateOk(asAlice, 'Completion prompt', COMPLETION_MODEL);
    await submitOk({ generation_id: completion.id, comment: 'no score here' }, asAlice);

    const byPrompt = await summary({ group_by: 'prompt' }, asAlice);
    expect(byPrompt.group_by).toBe('prompt');
    const row = (group: string) => byPrompt.rows.find((entry) => entry.group === group);
    expect(row('support-reply@1')).toEqual({
      group: 'support-reply@1',
      count: 2,
      mean_score: 0.75,
      thumbs_up: 1,
      thumbs_down: 0,
      corrections: 1,
    });
    expect(row('support-reply@2')).toEqual({
      group: 'support-reply@2',
      count: 1,
      mean_score: null,
      thumbs_up: 0,
      thumbs_down: 1,
      corrections: 0,
    });
    expect(row('')).toBeDefined(); // generations without a prompt version

    const byModel = await summary({}, asAlice);
    expect(byModel.group_by).toBe('model');
    expect(byModel.rows.find((entry) => entry.group === COMPLETION_MODEL)).toEqual({
      group: COMPLETION_MODEL,
      count: 1,
      mean_score: null,
      thumbs_up: 0,
      thumbs_down: 0,
      corrections: 0,
    });
    // A member's counts cover their own generations only; an admin's cover everyone's.
    const own = await list({ limit: 200 }, asAlice);
    const counted = byModel.rows.reduce((sum, entry) => sum + Number(entry.count), 0);
    expect(counted).toBe(own.feedback.length);
    const all = await summary({}, asAdmin);
    expect(all.rows.reduce((sum, entry) => sum + Number(entry.count), 0)).toBeGreaterThan(counted);

    const viaGraphql = await gateway.graphql(
      'query { feedback_summary(group_by: prompt) { group_by rows { group count mean_score thumbs_up thumbs_down corrections } } }',
      {},
      asAlice,
    );
    expect(viaGraphql.body.data.feedback_summary).toEqual(byPrompt);
    const badGroup = await rest(gateway, 'GET', '/feedback/summary?group_by=caller', undefined, asAlice);
    expect([badGroup.status, badGroup.body.error, badGroup.body.details]).toEqual([400, 'validation_error', 'parameter: group_by']);
  });

  it('exports JSON Lines in the chat and preference formats that pass the fine-tuning checker, one line per generation', async () => {
    const liked = await generateOk(asBob, 'Export: liked');
    const scored = await generateOk(asBob, 'Export: scored high');
    const lowScore = await generateOk(asBob, 'Export: scored low');
    const corrected = await generateOk(asBob, 'Export: corrected twice');
    const ignored = await generateOk(asBob, 'Export: thumbs down only');
    await submitOk({ generation_id: liked.id, thumbs: 'up' }, asBob);
    await submitOk({ generation_id: liked.id, thumbs: 'up' }, asCarol); // two pieces, one line
    await submitOk({ generation_id: scored.id, score: 0.9 }, asBob);
    await submitOk({ generation_id: lowScore.id, score: 0.6 }, asBob);
    await submitOk({ generation_id: corrected.id, correction: 'First fix' }, asBob);
    await submitOk({ generation_id: corrected.id, correction: 'Second fix', thumbs: 'down' }, asCarol);
    await submitOk({ generation_id: ignored.id, thumbs: 'down' }, asBob);

    const chat = await download(gateway, `format=chat&model_id=${CHAT_MODEL}`, asBob);
    expect(chat.status).toBe(200);
    expect(chat.headers.get('content-type')).toBe('application/x-ndjson');
    const chatLines = checkFineTuningJsonl(chat.bytes, 'chat') as Array<{ messages: Array<{ role: string; content: string }> }>;
    const answers = new Map(chatLines.map((line) => [line.messages[0]!.content, line.messages[1]!.content]));
    expect(answers.get('Export: liked')).toBe(liked.text);
    expect(answers.get('Export: scored high')).toBe(scored.text);
    expect(answers.get('Export: corrected twice')).toBe('Second fix');
    expect(answers.has('Export: scored low')).toBe(false);
    expect(answers.has('Export: thumbs down only')).toBe(false);
    expect(chatLines.filter((line) => line.messages[0]!.content.startsWith('Export:'))).toHaveLength(3);
    // Bob's export holds only Bob's generations.
    expect(
      [...answers.keys()].every((prompt) => prompt.startsWith('Export:') || prompt === 'Paging prompt' || prompt === "Bob's prompt"),
    ).toBe(true);

    const lowered = checkFineTuningJsonl(
      (await download(gateway, `format=chat&model_id=${CHAT_MODEL}&min_score=0.5`, asBob)).bytes,
      'chat',
    );
    expect(
      (lowered as Array<{ messages: Array<{ content: string }> }>).some((line) => line.messages[0]!.content === 'Export: scored low'),
    ).toBe(true);

    const preference = await download(gateway, `format=preference&model_id=${CHAT_MODEL}`, asBob);
    expect(preference.status).toBe(200);
    const pairs = checkFineTuningJsonl(preference.bytes, 'preference') as Array<{
      input: { messages: Array<{ content: string }> };
      preferred_output: Array<{ content: string }>;
      non_preferred_output: Array<{ content: string }>;
    }>;
    const pair = pairs.find((line) => line.input.messages[0]!.content === 'Export: corrected twice');
    expect(pair?.preferred_output[0]?.content).toBe('Second fix');
    expect(pair?.non_preferred_output[0]?.content).toBe(corrected.text);
    expect(pairs.every((line) => line.input.messages[0]!.content !== 'Export: liked')).toBe(true);

    for (const [query, parameter] of [
      ['', 'format'],
      ['format=jsonl', 'format'],
      ['format=chat&min_score=2', 'min_score'],
      ['format=chat&min_score=high', 'min_score'],
      ['format=chat&since=yesterday', 'since'],
    ] as const) {
      const refused = await fetch(`${gateway.url}/api/v1/feedback/export?${query}`, { headers: asBob });
      const body = (await refused.json()) as { error: string; details: string };
      expect({ query, status: refused.status, error: body.error }).toEqual({ query, status: 400, error: 'validation_error' });
      expect(body.details).toContain(parameter);
    }
    const unauthenticated = await fetch(`${gateway.url}/api/v1/feedback/export?format=chat`);
    expect(unauthenticated.status).toBe(401);
    const wrongMethod = await fetch(`${gateway.url}/api/v1/feedback/export?format=chat`, { method: 'POST', headers: asBob });
    expect(wrongMethod.status).toBe(405);
  });

  it('answers Generation.feedback with one query for a page of generations and one for all their feedback, whatever the page size', async () => {
    for (let index = 0; index < 6; index += 1) {
      const generation = await generateOk(asAdmin, `Loader prompt ${index}`);
      await submitOk({ generation_id: generation.id, score: index / 10 }, asAdmin);
      await submitOk({ generation_id: generation.id, thumbs: 'up' }, asCarol);
    }
    const queriesDuring = async (limit: number) => {
      const mark = logLines.length;
      const result = await gateway.graphql(
        `query ($limit: Int) { generations(limit: $limit) { generations { id feedback { id generation_id score thumbs } } } }`,
        { limit },
        asAdmin,
      );
      expect(result.body.errors).toBeUndefined();
      const sql = logLines
        .slice(mark)
        .map((line) => JSON.parse(line) as { msg: string; sql?: string })
        .filter((entry) => entry.msg === 'ledger query' && !entry.sql?.includes("'in_progress'")) // the background sweep
        .map((entry) => entry.sql!);
      return { generations: result.body.data.generations.generations as Array<{ id: string; feedback: Feedback[] }>, sql };
    };
    for (const limit of [5, 50]) {
      const { generations, sql } = await queriesDuring(limit);
      expect(generations.length).toBe(Math.min(limit, generations.length));
      expect(generations.filter((generation) => generation.feedback.length > 0).length).toBeGreaterThanOrEqual(5);
      for (const generation of generations) for (const piece of generation.feedback) expect(piece.generation_id).toBe(generation.id);
      expect({ limit, queries: sql.length }).toEqual({ limit, queries: 2 });
      expect(sql[0]).toMatch(/from "generations"/);
      expect(sql[1]).toMatch(/from "feedback"/);
    }
    // The log carries the SQL text only, never the parameters (prompts, answers).
    expect(logLines.some((line) => line.includes('Loader prompt'))).toBe(false);
  });
});

describe('feedback on a ledger recorded without content (LEDGER_CONTENT=false)', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: LEDGER_MODELS });
    gateway = await startGateway({ catalog: ledgerCatalog(fake), env: { LEDGER_CONTENT: 'false' } });
  });
  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });

  it('accepts feedback, but leaves the generations out of every export', async () => {
    const generated = await rest(gateway, 'POST', '/generate', { prompt: 'secret prompt', model_id: CHAT_MODEL }, {});
    const id = generated.body.metadata.generation_id as string;
    const response = await rest(gateway, 'POST', '/feedback', { generation_id: id, thumbs: 'up', correction: 'A fix' }, {});
    expectToMatchContract(response, '/feedback', 'post');
    expect(response.status).toBe(201);
    for (const format of ['chat', 'preference']) {
      const exported = await download(gateway, `format=${format}`, {});
      expect([exported.status, exported.bytes.length]).toEqual([200, 0]);
    }
  });
});

describe('the feedback export counts against the rate limit of other operations', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ env: { RATE_LIMIT_DEFAULT: '2', RATE_LIMIT_WINDOW_MS: '600000' } });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('serves two exports in the window, then answers 429 with Retry-After and the X-RateLimit headers', async () => {
    for (const remaining of ['1', '0']) {
      const served = await download(gateway, 'format=chat', {});
      expect([served.status, served.headers.get('x-ratelimit-limit'), served.headers.get('x-ratelimit-remaining')]).toEqual([
        200,
        '2',
        remaining,
      ]);
    }
    const refused = await fetch(`${gateway.url}/api/v1/feedback/export?format=chat`);
    const body = (await refused.json()) as { error: string; details: string };
    expect([refused.status, body.error]).toEqual([429, 'rate_limit_exceeded']);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(body.details).toContain('feedback_export');
  });
});
