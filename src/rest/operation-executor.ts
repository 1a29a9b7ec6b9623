import { execute, getVariableValues, Kind, type ExecutionResult, type GraphQLSchema, type VariableDefinitionNode } from 'graphql';
import type { CompiledQuery } from 'graphql-jit';
import type { RequestContext } from '../context';
import type { Logger } from '../logger';
import type { PreparedOperation } from './sofa-operations';

export interface OperationExecutorSettings {
  readonly schema: GraphQLSchema;
  /**
   * Whether operations are compiled. Off while tracing: OpenTelemetry's GraphQL instrumentation wraps
   * graphql-js's `execute`, so only operations that `execute` runs show their operation and resolver spans.
   */
  readonly compile: boolean;
  /** An operation is compiled after this many calls (one-off operations never pay for it). */
  readonly compileAfterCalls: number;
  readonly logger: Logger;
}

/** Runs a prepared operation's variables through it, as GraphQL would: the same result, errors included. */
export interface OperationExecutor {
  (operation: PreparedOperation, variables: Record<string, unknown>, context: RequestContext): Promise<ExecutionResult>;
  /** Whether the operation runs compiled from now on. */
  isCompiled(operation: PreparedOperation): boolean;
}

interface OperationState {
  calls: number;
  compiled?: CompiledQuery | 'failed';
  readonly variableDefinitions: readonly VariableDefinitionNode[];
}

/**
 * Each REST route runs one prepared operation over and over. graphql-js's `execute` interprets the
 * document on every call (its variables, every field's arguments and sub-selections, a resolve-info
 * object per field); graphql-jit compiles it once into a function that does only that document's
 * work. REST generate's operation (scripts of the session's measurements in the README): ~44 µs of CPU per
 * call interpreted, ~13 µs compiled, of which ~3 µs are the resolver itself.
 *
 * An operation is compiled off the request path (a few milliseconds, once) after its
 * `compileAfterCalls`-th call; until then, and if compiling fails, graphql-js runs it. graphql-jit is
 * loaded with the first compilation, so start-up does not pay for it.
 *
 * Variables that graphql-jit refuses are checked again by graphql-js, whose words the answer carries:
 * graphql-jit words them differently ("Expected type Int", no path into a list), and a body field of the
 * wrong type must read the same on REST as on /graphql, compiled or not (test/rest/operation-executor.test.ts).
 * Should graphql-js accept what graphql-jit refused, graphql-js runs the call.
 */
export function createOperationExecutor(settings: OperationExecutorSettings): OperationExecutor {
  const { schema, logger } = settings;
  const states = new WeakMap<PreparedOperation, OperationState>();

  const compile = (operation: PreparedOperation, state: OperationState): void => {
    try {
      const { compileQuery, isCompiledQuery } = require('graphql-jit') as typeof import('graphql-jit');
      const compiled = compileQuery(schema, operation.document, operation.operationName);
      if (isCompiledQuery(compiled)) {
        state.compiled = compiled;
        return;
      }
      state.compiled = 'failed';
      logger.warn(
        { operation: operation.operationName, errors: compiled.errors?.map((error) => error.message) },
        'REST operation not compiled',
      );
    } catch (error) {
      state.compiled = 'failed';
      logger.warn({ err: error, operation: operation.operationName }, 'REST operation not compiled');
    }
  };

  const run = async (
    operation: PreparedOperation,
    variables: Record<string, unknown>,
    context: RequestContext,
  ): Promise<ExecutionResult> => {
    let state = states.get(operation);
    if (!state) {
      state = { calls: 0, variableDefinitions: variableDefinitionsOf(operation) };
      states.set(operation, state);
    }
    const { compiled } = state;
    if (compiled !== undefined && compiled !== 'failed') {
      const result = await compiled.query(undefined, context, variables);
      // Without a data key the variables were refused before anything ran (graphql-jit answers so only
      // then): graphql-js says why, in its words. With one, resolvers ran, and nothing may run them again.
      if ('data' in result) return result;
      const checked = getVariableValues(schema, state.variableDefinitions, variables, { maxErrors: 50 });
      if (checked.errors) return { errors: checked.errors };
    } else if (settings.compile && compiled === undefined && ++state.calls === settings.compileAfterCalls) {
      const pending = state;
      setImmediate(() => compile(operation, pending));
    }
    return execute({
      schema,
      document: operation.document,
      operationName: operation.operationName,
      variableValues: variables,
      contextValue: context,
    });
  };
  const isCompiled = (operation: PreparedOperation): boolean => {
    const compiled = states.get(operation)?.compiled;
    return compiled !== undefined && compiled !== 'failed';
  };
  return Object.assign(run, { isCompiled });
}

/** A prepared document is one operation. */
const variableDefinitionsOf = (operation: PreparedOperation): readonly VariableDefinitionNode[] =>
  operation.document.definitions.flatMap((definition) =>
    definition.kind === Kind.OPERATION_DEFINITION ? (definition.variableDefinitions ?? []) : [],
  );
