import { GraphQLError } from 'graphql';
import type { MiddlewareFn } from 'type-graphql';
import type { RequestContext } from '../context';
import { ApiError } from '../errors/api-error';
import type { Logger } from '../logger';

const isPromiseLike = (value: unknown): value is PromiseLike<unknown> => typeof (value as PromiseLike<unknown> | null)?.then === 'function';

/**
 * Lets typed errors through (a Retry-After they carry goes on the response) and replaces anything else with an `internal_error` that names the
 * request id, after logging the original: clients never see stack traces or internals.
 */
export function createErrorMaskingMiddleware(logger: Logger): MiddlewareFn<RequestContext> {
  return async ({ context, info }, next) => {
    const mask = (error: unknown): never => {
      if (error instanceof ApiError) {
        if (error.retryAfterSeconds !== undefined) context.responseHeaders.set('retry-after', String(error.retryAfterSeconds));
        throw error;
      }
      if (error instanceof GraphQLError && typeof error.extensions.code === 'string') throw error;
      logger.error(
        { err: error, requestId: context.requestId, field: `${info.parentType.name}.${info.fieldName}` },
        'unexpected error in resolver',
      );
      throw new ApiError('internal_error', 500, 'Internal server error', `request id ${context.requestId}`);
    };
    try {
      const result: unknown = await next();
      // Federation's `_entities` answers one promise per representation; each fails on its own, later.
      return Array.isArray(result)
        ? result.map((item: unknown) => (isPromiseLike(item) ? Promise.resolve(item).catch(mask) : item))
        : result;
    } catch (error) {
      return mask(error);
    }
  };
}
