import {
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  getOperationAST,
  Kind,
  NoSchemaIntrospectionCustomRule,
  type OperationTypeNode,
  parse,
  specifiedRules,
  type ValidationRule,
  validate,
} from 'graphql';

/** What a GraphQL client sends for one operation, over whichever transport. */
export interface OperationRequest {
  readonly query: string;
  readonly operationName?: string | null;
  readonly variables?: Readonly<Record<string, unknown>> | null;
}

export interface GraphQLOperationsSettings {
  /** The schema /graphql serves (the federation subgraph, root-field middlewares applied). */
  readonly schema: GraphQLSchema;
  /** graphql-js's parser stops past this many tokens, as Apollo's `parseOptions` does for /graphql. */
  readonly maxTokens: number;
  /** Run after graphql-js's specified rules: armor's depth, aliases, cost and directives limits. */
  readonly validationRules: readonly ValidationRule[];
  readonly introspection: boolean;
  /** /graphql's error formatter, so codes (`extensions.code`) are the same on every transport. */
  readonly formatError: (formatted: GraphQLFormattedError) => GraphQLFormattedError;
}

export type PreparedOperation =
  | { readonly ok: true; readonly kind: OperationTypeNode; readonly args: ExecutionArgs }
  | { readonly ok: false; readonly errors: readonly GraphQLError[] };

/**
 * Apollo's request pipeline for transports outside Apollo (GraphQL over SSE and WebSocket): the same
 * parse limit, validation rules and error codes, so a hostile document is refused alike everywhere.
 */
export class GraphQLOperations {
  private readonly rules: readonly ValidationRule[];

  constructor(private readonly settings: GraphQLOperationsSettings) {
    this.rules = [...specifiedRules, ...settings.validationRules, ...(settings.introspection ? [] : [NoSchemaIntrospectionCustomRule])];
  }

  /** Parses and validates; the errors carry the codes Apollo gives them, ready for `formatErrors`. */
  prepare(request: OperationRequest, contextValue: unknown): PreparedOperation {
    const { schema, maxTokens } = this.settings;
    let document: ReturnType<typeof parse>;
    try {
      document = parse(request.query, { maxTokens });
    } catch (error) {
      if (error instanceof GraphQLError) return { ok: false, errors: [withCode(error, 'GRAPHQL_PARSE_FAILED')] };
      throw error;
    }
    const invalid = validate(schema, document, this.rules);
    if (invalid.length > 0) return { ok: false, errors: invalid.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED')) };
    const operationName = request.operationName ?? undefined;
    const operation = getOperationAST(document, operationName);
    if (!operation) {
      const message = operationName
        ? `Unknown operation named "${operationName}".`
        : 'Must provide operation name if query contains multiple operations.';
      return { ok: false, errors: [new GraphQLError(message, { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })] };
    }
    return {
      ok: true,
      kind: operation.operation,
      args: { schema, document, operationName, variableValues: request.variables ?? undefined, contextValue },
    };
  }

  formatErrors(errors: readonly GraphQLError[]): GraphQLFormattedError[] {
    return errors.map((error) => this.settings.formatError(withInputCode(error).toJSON()));
  }

  formatResult(result: ExecutionResult): FormattedExecutionResult {
    const { errors, ...answered } = result;
    return errors ? { ...answered, errors: this.formatErrors(errors) } : answered;
  }
}

function withCode(error: GraphQLError, code: string): GraphQLError {
  if (typeof error.extensions.code === 'string') return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

/** As Apollo: a variable's value that does not coerce to its type is the caller's mistake (BAD_USER_INPUT). */
function withInputCode(error: GraphQLError): GraphQLError {
  const [node, ...others] = error.nodes ?? [];
  const isVariableCoercion =
    node?.kind === Kind.VARIABLE_DEFINITION && others.length === 0 && error.message.startsWith(`Variable "$${node.variable.name.value}" `);
  return isVariableCoercion ? withCode(error, 'BAD_USER_INPUT') : error;
}
