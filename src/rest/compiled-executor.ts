import {
  type DocumentNode,
  execute,
  type ExecutionResult,
  type GraphQLSchema,
  getOperationAST,
  GraphQLError,
  getVariableValues,
  type OperationDefinitionNode,
  OperationTypeNode,
  type VariableDefinitionNode,
} from 'graphql';
import type { CompiledQuery } from 'graphql-jit';
import type { Logger } from '../logger';

export interface CompiledExecutorSettings {
  readonly schema: GraphQLSchema;
  /**
   * Whether operations are compiled at all. Off while tracing: OpenTelemetry's GraphQL instrumentation
   * wraps graphql-js's `execute`, so only operations that `execute` runs show their operation and resolver spans.
   */
  readonly compile: boolean;
  /** An operation is compiled after this many calls of the same document (one-off documents never pay for it). */
  readonly compileAfterCalls: number;
  readonly logger: Logger;
}

export interface ExecutionRequest {
  /** Parsed and validated: a route's prepared operation. */
  readonly document: DocumentNode;
  readonly operationName?: string | null;
  readonly variables: Readonly<Record<string, unknown>> | undefined;
  readonly context: unknown;
}

/** Runs an operation as graphql-js's `execute` would: the same result, errors included. */
export interface CompiledExecutor {
  (request: ExecutionRequest): Promise<ExecutionResult>;
  /** Whether the document's operation runs compiled from now on. */
  isCompiled(document: DocumentNode, operationName?: string | null): boolean;
}

interface OperationState {
  calls: number;
  /** Absent until compiled; `interpreted` for good when compiling failed. */
  compiled?: CompiledQuery | 'pending' | 'interpreted';
  readonly variableDefinitions: readonly VariableDefinitionNode[];
}

/**
 * graphql-js's `execute` interprets the document on every call (its variables, every field's arguments
 * and sub-selections, a resolve-info object per field); graphql-jit compiles an operation once into a
 * function that does only that document's work. REST runs one prepared operation per route, over and
 * over. REST generate's operation, measured in-process: ~44 µs of CPU per call interpreted, ~21 µs
 * compiled, of which ~3 µs are the resolver itself; through the gateway, one request at a time, ~+11%
 * requests/s (README, "Compiled REST operations"). /graphql stays on Apollo's own execution: through
 * Apollo's gateway hook, its generate measured +2.7% requests/s one request at a time and -0.4% at ten
 * connections (12 alternating slices each), not worth a second execution path for clients' documents.
 *
 * Queries and mutations are compiled, off the request path, after their document's
 * `compileAfterCalls`-th call; until then, and if compiling fails, graphql-js runs them. REST's
 * operations are a fixed set, so the routes bound the compiling, not what clients send. graphql-jit is
 * loaded with the first compilation, so start-up does not pay for it.
 *
 * Variables that graphql-jit refuses are checked again by graphql-js, whose words the answer carries:
 * graphql-jit words them differently ("Expected type Int", no path into a list), and a body field of the
 * wrong type must read the same on every surface, compiled or not (test/rest/compiled-executor.test.ts).
 * Should graphql-js accept what graphql-jit refused, graphql-js runs the call.
 */
export function createCompiledExecutor(settings: CompiledExecutorSettings): CompiledExecutor {
  const { schema, logger } = settings;
  // Keyed by the operation's node in its document: a state lives as long as the document, and operation
  // names that name nothing in the document leave none.
  const states = new WeakMap<OperationDefinitionNode, OperationState>();

  /** Undefined for what graphql-js alone runs: subscriptions, and a name that picks no operation (its error is graphql-js's). */
  const stateOf = (document: DocumentNode, operationName: string | null | undefined): OperationState | undefined => {
    const operation = getOperationAST(document, operationName);
    if (!operation || (operation.operation !== OperationTypeNode.QUERY && operation.operation !== OperationTypeNode.MUTATION))
      return undefined;
    let state = states.get(operation);
    if (!state) {
      state = { calls: 0, variableDefinitions: operation.variableDefinitions ?? [] };
      states.set(operation, state);
    }
    return state;
  };

  const compile = (document: DocumentNode, operationName: string | null | undefined, state: OperationState): void => {
    try {
      const { compileQuery, isCompiledQuery } = require('graphql-jit') as typeof import('graphql-jit');
      const compiled = compileQuery(schema, document, operationName ?? undefined);
      if (isCompiledQuery(compiled)) {
        state.compiled = compiled;
        return;
      }
      state.compiled = 'interpreted';
      logger.warn({ operation: operationName, errors: compiled.errors?.map((error) => error.message) }, 'operation not compiled');
    } catch (error) {
      state.compiled = 'interpreted';
      logger.warn({ err: error, operation: operationName }, 'operation not compiled');
    }
  };

  const run = async ({ document, operationName, variables, context }: ExecutionRequest): Promise<ExecutionResult> => {
    const state = stateOf(document, operationName);
    const compiled = state?.compiled;
    if (state && typeof compiled === 'object') {
      const result = await compiled.query(undefined, context, variables ?? {});
      // Without a data key the variables were refused before anything ran (graphql-jit answers so only
      // then): graphql-js says why, in its words. With one, resolvers ran, and nothing may run them again.
      if ('data' in result) return result.errors ? { ...result, errors: result.errors.map(asGraphQLJsError) } : result;
      const checked = getVariableValues(schema, state.variableDefinitions, variables ?? {}, { maxErrors: 50 });
      if (checked.errors) return { errors: checked.errors };
    } else if (state && compiled === undefined && settings.compile && ++state.calls >= settings.compileAfterCalls) {
      state.compiled = 'pending';
      setImmediate(() => compile(document, operationName, state));
    }
    return execute({ schema, document, operationName, variableValues: variables, contextValue: context });
  };

  const isCompiled = (document: DocumentNode, operationName?: string | null): boolean => {
    return typeof stateOf(document, operationName)?.compiled === 'object';
  };
  return Object.assign(run, { isCompiled });
}

/**
 * graphql-jit's errors leave `extensions` undefined when the error they wrap has none (a nested field's
 * failure, a null in a non-null field), where graphql-js's are `{}` (Apollo, for one, reads
 * `extensions.code` without a check). Rebuilt as graphql-js builds them.
 */
function asGraphQLJsError(error: GraphQLError): GraphQLError {
  if (error.extensions !== undefined) return error;
  const rebuilt = new GraphQLError(error.message, { path: error.path, originalError: error.originalError ?? undefined, extensions: {} });
  // graphql-js derives locations from AST nodes, which graphql-jit's errors do not keep: its locations are the same.
  (rebuilt as { locations?: GraphQLError['locations'] }).locations = error.locations;
  return rebuilt;
}
