import type { ExecutionResult, GraphQLSchema } from 'graphql';
import type { RequestContext } from '../../src/context';
import { generationError, modelNotFound } from '../../src/errors/api-error';
import { createLogger } from '../../src/logger';
import type { BatchOutcome, GenerateOutcome } from '../../src/pipeline/generation-pipeline';
import { renderGraphQLErrors } from '../../src/rest/error-response';
import { createOperationExecutor } from '../../src/rest/operation-executor';
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

/** A request context whose pipeline answers (or throws) what a case needs; nothing else is reached. */
function contextAnswering(generation: { generate?: () => Promise<unknown>; generateBatch?: () => Promise<unknown> }): RequestContext {
  return {
    requestId: 'request-1',
    caller: { id: 'key-1', name: 'key-1', role: 'admin' },
    responseHeaders: new Map(),
    services: { generation },
  } as unknown as RequestContext;
}

/** What the REST handler reads of a result: data, or the rendered error, and each error's message, path and extensions. */
const comparable = (result: ExecutionResult) => ({
  data: result.data,
  errors: result.errors?.map((error) => ({ message: error.message, path: error.path, extensions: error.extensions })),
  rendered: result.errors ? renderGraphQLErrors(result.errors) : undefined,
});

describe('REST operations compiled once they are in use (graphql-jit) answer exactly as graphql-js does', () => {
  let schema: GraphQLSchema;
  let operations: Readonly<Record<OperationName, PreparedOperation>>;

  beforeAll(async () => {
    schema = (await buildGatewaySchemas(logger)).plain;
    operations = prepareSofaOperations(schema);
  });

  /** The same call through graphql-js (the first call) and through the compiled operation (once compiled). */
  async function interpretedThenCompiled(operationName: OperationName, variables: Record<string, unknown>, context: () => RequestContext) {
    const run = createOperationExecutor({ schema, compile: true, compileAfterCalls: 1, logger });
    const operation = operations[operationName];
    const interpreted = await run(operation, variables, context());
    expect(run.isCompiled(operation)).toBe(false);
    // Compiled off the request path, after the call that reached the threshold.
    await new Promise((resolve) => setImmediate(resolve));
    expect(run.isCompiled(operation)).toBe(true);
    const compiled = await run(operation, variables, context());
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

  it('a batch with a failed prompt: its nulls, and the metadata that holds only its generation_id', async () => {
    const { interpreted, compiled } = await interpretedThenCompiled(
      'Mutation.generate_batch',
      { prompts: ['one', 'two'], model_id: 'some-model' },
      () => contextAnswering({ generateBatch: async () => batch }),
    );
    expect(interpreted.errors).toBeUndefined();
    expect(compiled).toEqual(interpreted);
  });

  it('a typed error from the pipeline: its code, status and details', async () => {
    const { interpreted, compiled } = await interpretedThenCompiled('Mutation.generate', generateVariables, () =>
      contextAnswering({
        generate: async () => {
          throw modelNotFound('some-model');
        },
      }),
    );
    expect(interpreted.rendered).toMatchObject({ status: 404, body: { error: 'model_not_found' } });
    expect(compiled).toEqual(interpreted);
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
    const operation = operations['Mutation.generate'];
    const off = createOperationExecutor({ schema, compile: false, compileAfterCalls: 1, logger });
    for (let call = 0; call < 3; call += 1) await off(operation, generateVariables, contextAnswering({ generate: async () => outcome }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(off.isCompiled(operation)).toBe(false);

    const onThird = createOperationExecutor({ schema, compile: true, compileAfterCalls: 3, logger });
    for (let call = 1; call <= 3; call += 1) {
      await onThird(operation, generateVariables, contextAnswering({ generate: async () => outcome }));
      await new Promise((resolve) => setImmediate(resolve));
      expect(onThird.isCompiled(operation)).toBe(call === 3);
    }
  });
});
