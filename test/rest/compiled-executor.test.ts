import type { ExecutionResult, GraphQLSchema } from 'graphql';
import type { RequestContext } from '../../src/context';
import { generationError, modelNotFound } from '../../src/errors/api-error';
import { createLogger } from '../../src/logger';
import { OperationRateLimiter } from '../../src/middlewares/operation-rate-limiter';
import { createRateLimitMiddleware } from '../../src/middlewares/rate-limit.middleware';
import { MemoryRateLimitStore } from '../../src/pipeline/admission/memory-rate-limit-store';
import { RateLimiter } from '../../src/pipeline/admission/rate-limiter';
import type { BatchOutcome, GenerateOutcome } from '../../src/pipeline/generation-pipeline';
import { renderGraphQLErrors } from '../../src/rest/error-response';
import { type CompiledExecutor, createCompiledExecutor } from '../../src/rest/compiled-executor';
import type { OperationName } from '../../src/rest/routes';
import { prepareSofaOperations, type PreparedOperation } from '../../src/rest/sofa-operations';
import { buildGatewaySchemas } from '../../src/schema';

const logger = createLogger('silent');

const outcome: GenerateOutcome = {
  text: 'hello',
  modelId: 'some-model',
  prompt: 'a prompt',
  parameters: { maxTokens: 5, temperature: 0.5, topP: 0.9 },
  metrics: { inputTokens: 3, outputTokens: 2, totalTokens: 5, latencyMs: 12 },
  metadata: {
    generationId: 'gen_1',
    finishReason: 'stop',
    provider: 'endpoint-a',
    upstreamModel: 'some-model-2026',
    requestId: 'request-1',
    tokenSource: 'upstream',
    costUsd: { input: 0.001, output: 0.002, total: 0.003 },
    attempts: [
      { modelId: 'some-model', provider: 'endpoint-b', error: 'upstream_error', latencyMs: 4 },
      { modelId: 'some-model', provider: 'endpoint-a', error: null, latencyMs: 12 },
    ],
  },
  timestamp: new Date('2026-12-06T10:00:00.000Z'),
};

const batch: BatchOutcome = {
  results: [
    { index: 0, prompt: 'one', text: 'first', success: true, error: null, metadata: { ...outcome.metadata, ...outcome.metrics } },
    { index: 1, prompt: 'two', text: null, success: false, error: 'The upstream failed: 502', metadata: { generationId: 'gen_2' } },
  ],
  modelId: 'some-model',
  parameters: outcome.parameters,
  metrics: {
    inputTokens: 3,
    outputTokens: 2,
    totalTokens: 5,
    totalLatencyMs: 20,
    successfulGenerations: 1,
    failedGenerations: 1,
    averageLatencyMs: 12,
    costUsd: outcome.metadata.costUsd,
  },
  timestamp: new Date('2026-12-06T10:00:01.000Z'),
};

/** A request context whose services answer (or throw) what a case needs; nothing else is reached. */
function contextAnswering(
  generation: { generate?: () => Promise<unknown>; generateBatch?: () => Promise<unknown> },
  ledger: { usage?: (...args: unknown[]) => Promise<unknown> } = {},
): RequestContext {
  return {
    requestId: 'request-1',
    caller: { id: 'key-1', name: 'key-1', role: 'admin' },
    responseHeaders: new Map(),
    services: { generation, ledger },
  } as unknown as RequestContext;
}

/** Counts the calls of a service method: each request must run it once, compiled or not. */
function counted<Args extends unknown[]>(answer: (...args: Args) => Promise<unknown>) {
  const calls: Args[] = [];
  return Object.assign(
    (...args: Args) => {
      calls.push(args);
      return answer(...args);
    },
    { calls },
  );
}

/** The rendered error without the moment it was rendered. */
const withoutTimestamp = ({ body: { timestamp: _timestamp, ...body }, ...rendered }: ReturnType<typeof renderGraphQLErrors>) => ({
  ...rendered,
  body,
});

/** What the REST handler reads of a result: data, or the rendered error, and each error's message, path and extensions. */
const comparable = (result: ExecutionResult) => ({
  data: result.data,
  errors: result.errors?.map((error) => ({ message: error.message, path: error.path, extensions: error.extensions })),
  rendered: result.errors ? withoutTimestamp(renderGraphQLErrors(result.errors)) : undefined,
});

describe('REST operations compiled once they are in use (graphql-jit) answer exactly as graphql-js does', () => {
  let schema: GraphQLSchema;
  let operations: Readonly<Record<OperationName, PreparedOperation>>;

  beforeAll(async () => {
    // With the root-field middlewares the server has (the rate limit reads the resolve info graphql-jit builds).
    const rateLimiter = new OperationRateLimiter(
      { generate: 1000, generateBatch: 1000, other: 1000 },
      new RateLimiter(new MemoryRateLimitStore(), 60_000),
    );
    schema = (await buildGatewaySchemas(logger, [createRateLimitMiddleware(rateLimiter)])).plain;
    operations = prepareSofaOperations(schema);
  });

  /** The same call through graphql-js (the first call) and through the compiled operation (once compiled). */
  async function interpretedThenCompiled(operationName: OperationName, variables: Record<string, unknown>, context: () => RequestContext) {
    const run = createCompiledExecutor({ schema, compile: true, compileAfterCalls: 1, logger });
    const { document, operationName: name } = operations[operationName];
    const interpreted = await run({ document, operationName: name, variables, context: context() });
    expect(run.isCompiled(document, name)).toBe(false);
    // Compiled off the request path, after the call that reached the threshold.
    await new Promise((resolve) => setImmediate(resolve));
    expect(run.isCompiled(document, name)).toBe(true);
    const compiled = await run({ document, operationName: name, variables, context: context() });
    return { interpreted: comparable(interpreted), compiled: comparable(compiled) };
  }

  const generateVariables = { prompt: 'a prompt', model_id: 'some-model', max_tokens: 5, temperature: 0.5, top_p: 0.9 };

  it('a generation: every field of the answer, nested lists, enums and the timestamp', async () => {
    const { interpreted, compiled } = await interpretedThenCompiled('Mutation.generate', generateVariables, () =>
      contextAnswering({ generate: async () => outcome }),
    );
    expect(interpreted.errors).toBeUndefined();
    expect(interpreted.data?.generate).toMatchObject({ text: 'hello', timestamp: '2026-12-06T10:00:00.000Z' });
    expect(compiled).toEqual(interpreted);
  });

  it('a null in a non-null field below the root: the same error, with the extensions graphql-js gives it', async () => {
    const { interpreted, compiled } = await interpretedThenCompiled('Mutation.generate', generateVariables, () =>
      contextAnswering({ generate: async () => ({ ...outcome, text: null }) }),
    );
    expect(interpreted.errors).toEqual([
      { message: 'Cannot return null for non-nullable field GenerateResponse.text.', path: ['generate', 'text'], extensions: {} },
    ]);
    expect(compiled).toEqual(interpreted);
  });

  it('a batch with a failed prompt: its nulls, and the metadata that holds only its generation_id', async () => {
    const { interpreted, compiled } = await interpretedThenCompiled(
      'Mutation.generate_batch',
      { prompts: ['one', 'two'], model_id: 'some-model' },
      () => contextAnswering({ generateBatch: async () => batch }),
    );
    expect(interpreted.errors).toBeUndefined();
    expect(compiled).toEqual(interpreted);
  });

  it('a typed error from the pipeline: its code, status and details; the generation ran once a request', async () => {
    const generate = counted(async () => {
      throw modelNotFound('some-model');
    });
    const { interpreted, compiled } = await interpretedThenCompiled('Mutation.generate', generateVariables, () =>
      contextAnswering({ generate }),
    );
    expect(interpreted.rendered).toMatchObject({ status: 404, body: { error: 'model_not_found' } });
    expect(compiled).toEqual(interpreted);
    expect(generate.calls).toHaveLength(2);
  });

  it('a query from the query string: argument defaults, a date and an enum reach the service alike, and the answer is the same', async () => {
    const totals = {
      requests: 2,
      succeeded: 1,
      failed: 1,
      inputTokens: 6,
      outputTokens: 2,
      totalTokens: 8,
      costUsd: 0.003,
      costUnits: 30_000_000n,
    };
    const report = {
      groupBy: 'model',
      since: new Date('2026-12-01T00:00:00.000Z'),
      until: null,
      rows: [{ group: 'some-model', ...totals }],
      totals,
    };
    const usage = counted(async (..._args: unknown[]) => report);
    const { interpreted, compiled } = await interpretedThenCompiled('Query.usage', { since: '2026-12-01T00:00:00Z' }, () =>
      contextAnswering({}, { usage }),
    );
    expect(interpreted.errors).toBeUndefined();
    expect(compiled).toEqual(interpreted);
    expect(usage.calls).toHaveLength(2);
    expect(usage.calls[1]).toEqual(usage.calls[0]);
    expect(usage.calls[0]![1]).toMatchObject({ groupBy: 'model', since: new Date('2026-12-01T00:00:00.000Z') });
  });

  it('an unexpected error: masked the same way', async () => {
    const { interpreted, compiled } = await interpretedThenCompiled('Mutation.generate', generateVariables, () =>
      contextAnswering({
        generate: async () => {
          throw new TypeError('a bug');
        },
      }),
    );
    expect(interpreted.rendered?.status).toBe(500);
    expect(compiled).toEqual(interpreted);
    const typed = await interpretedThenCompiled('Mutation.generate', generateVariables, () =>
      contextAnswering({
        generate: async () => {
          throw generationError('llama.cpp failed', 'out of memory');
        },
      }),
    );
    expect(typed.compiled).toEqual(typed.interpreted);
  });

  it.each([
    ['a body field of the wrong type', { ...generateVariables, max_tokens: 'many' }],
    ['a required field missing', { model_id: 'some-model' }],
    ['a number out of range', { ...generateVariables, max_tokens: 2 ** 40 }],
    ['a list of the wrong items', { prompts: ['one', 2], model_id: 'some-model' }],
  ])('%s: the same coercion error, worded by graphql-js', async (_case, variables) => {
    const operation: OperationName = 'prompts' in variables ? 'Mutation.generate_batch' : 'Mutation.generate';
    const { interpreted, compiled } = await interpretedThenCompiled(operation, variables, () =>
      contextAnswering({ generate: async () => outcome, generateBatch: async () => batch }),
    );
    expect(interpreted.rendered).toMatchObject({ status: 400, body: { error: 'validation_error' } });
    expect(compiled).toEqual(interpreted);
  });

  it('compiles nothing while off (tracing), and an operation only after its threshold of calls', async () => {
    const { document, operationName } = operations['Mutation.generate'];
    const call = (run: CompiledExecutor) =>
      run({ document, operationName, variables: generateVariables, context: contextAnswering({ generate: async () => outcome }) });
    const off = createCompiledExecutor({ schema, compile: false, compileAfterCalls: 1, logger });
    for (let count = 0; count < 3; count += 1) await call(off);
    await new Promise((resolve) => setImmediate(resolve));
    expect(off.isCompiled(document, operationName)).toBe(false);

    const onThird = createCompiledExecutor({ schema, compile: true, compileAfterCalls: 3, logger });
    for (let count = 1; count <= 3; count += 1) {
      await call(onThird);
      await new Promise((resolve) => setImmediate(resolve));
      expect(onThird.isCompiled(document, operationName)).toBe(count === 3);
    }
  });

  it('leaves subscriptions to graphql-js', async () => {
    const { parse } = await import('graphql');
    const document = parse('subscription S($p: String!) { generate_stream(prompt: $p, model_id: "m") { text } }');
    const run = createCompiledExecutor({ schema, compile: true, compileAfterCalls: 1, logger });
    await run({ document, operationName: 'S', variables: { p: 'x' }, context: contextAnswering({}) });
    await new Promise((resolve) => setImmediate(resolve));
    expect(run.isCompiled(document, 'S')).toBe(false);
  });
});
