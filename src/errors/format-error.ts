import type { GraphQLFormattedError } from 'graphql';
import type { ApiErrorCode } from './api-error';

/** Apollo's own codes, renamed into the API's snake_case vocabulary. */
const apolloCodes: Record<string, ApiErrorCode | 'bad_request' | 'persisted_query_not_found' | 'persisted_query_not_supported'> = {
  GRAPHQL_PARSE_FAILED: 'validation_error',
  GRAPHQL_VALIDATION_FAILED: 'validation_error',
  BAD_USER_INPUT: 'validation_error',
  OPERATION_RESOLUTION_FAILURE: 'validation_error',
  BAD_REQUEST: 'bad_request',
  PERSISTED_QUERY_NOT_FOUND: 'persisted_query_not_found',
  PERSISTED_QUERY_NOT_SUPPORTED: 'persisted_query_not_supported',
};

/** graphql-armor's refusals, given codes that say which limit was hit. */
const armorCodes: ReadonlyArray<readonly [RegExp, string]> = [
  [/Query depth limit of \d+ exceeded/, 'query_too_deep'],
  [/Aliases limit of \d+ exceeded/, 'too_many_aliases'],
  [/Token limit of \d+ exceeded/, 'too_many_tokens'],
  // graphql-js's own limit (its message says "more that").
  [/Document contains more tha[nt] \d+ tokens/, 'too_many_tokens'],
  [/Query Cost limit of \d+ exceeded/, 'query_too_costly'],
  [/Directives limit of \d+ exceeded/, 'too_many_directives'],
];

/**
 * Shapes every GraphQL error the same way: a snake_case `code`, a string `details`, and nothing
 * internal. Root fields' unknown errors were already logged and masked by their middleware; anything
 * that still arrives unknown is masked here.
 */
export function formatGraphQLError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const { code, details } = formatted.extensions ?? {};
  const armorCode = armorCodes.find(([pattern]) => pattern.test(formatted.message))?.[1];
  if (armorCode) {
    return { message: formatted.message.replace(/^Syntax Error: /, ''), extensions: { code: armorCode, details: formatted.message } };
  }
  const knownCode = typeof code === 'string' ? (apolloCodes[code] ?? (isSnakeCase(code) ? code : undefined)) : undefined;
  if (!knownCode) {
    return { message: 'Internal server error', extensions: { code: 'internal_error' } };
  }
  const described = typeof details === 'string' ? details : coercedParameterDetails(formatted.message);
  return {
    message: formatted.message,
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: { code: knownCode, ...(described === undefined ? {} : { details: described }) },
  };
}

/**
 * `details` for graphql-js's variable coercion errors ('Variable "$since" got invalid value ...'):
 * the parameter, as REST callers name it too. Undefined for any other message.
 */
export function coercedParameterDetails(message: string): string | undefined {
  const parameter = /^Variable "\$(\w+)"/.exec(message)?.[1];
  return parameter === undefined ? undefined : `parameter: ${parameter}`;
}

const isSnakeCase = (code: string): boolean => /^[a-z]+(_[a-z]+)*$/.test(code);

// graphql-js's hints ("Did you mean \"health\"?", "Did you mean the enum value \"chat\"?"); names never hold a "?".
const suggestion = / ?Did you mean [^?]*\?/g;

/**
 * The formatter for Apollo. With `hideSuggestions` (introspection off) it also drops graphql-js's
 * suggestions, which would name the schema's fields: here, per error, instead of a plugin run per request.
 */
export function createGraphQLErrorFormatter(settings: {
  readonly hideSuggestions: boolean;
}): (formatted: GraphQLFormattedError) => GraphQLFormattedError {
  if (!settings.hideSuggestions) return formatGraphQLError;
  return (formatted) => formatGraphQLError({ ...formatted, message: formatted.message.replace(suggestion, '') });
}
