import type { MiddlewareFn } from 'type-graphql';
import type { RequestContext } from '../context';
import type { OperationRateLimiter } from './operation-rate-limiter';

/** Counts one call of a root operation; applyRootFieldMiddlewares attaches it to root fields only. */
export function createRateLimitMiddleware(limiter: OperationRateLimiter): MiddlewareFn<RequestContext> {
  return async ({ context, info, args }, next) => {
    context.requestLog?.ranOperation(info.fieldName);
    await limiter.check(context, info, args);
    return next();
  };
}
