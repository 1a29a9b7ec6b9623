import type { MiddlewareFn } from 'type-graphql';
import type { RequestContext } from '../context';
import type { OperationRateLimiter } from './operation-rate-limiter';

/** Limits root operations only: nested fields are part of the operation already counted. */
export function createRateLimitMiddleware(limiter: OperationRateLimiter): MiddlewareFn<RequestContext> {
  return async ({ context, info, args }, next) => {
    const root = info.parentType === info.schema.getQueryType() || info.parentType === info.schema.getMutationType();
    if (root) await limiter.check(context, info, args);
    return next();
  };
}
