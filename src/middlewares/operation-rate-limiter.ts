import type { GraphQLResolveInfo } from 'graphql';
import { getGraphQLRateLimiter } from 'graphql-rate-limit';
import type { RequestContext } from '../context';
import { ApiError } from '../errors/api-error';
import type { Logger } from '../logger';
import type { ReservingStore } from './rate-limit-stores';

export interface RateLimits {
  readonly generate: number;
  readonly generateBatch: number;
  readonly other: number;
  readonly windowMs: number;
}

/** The spec's limits per root operation, per caller, shared by GraphQL and REST (both run these resolvers). */
export class OperationRateLimiter {
  private readonly limiter: ReturnType<typeof getGraphQLRateLimiter>;

  constructor(
    private readonly limits: RateLimits,
    private readonly store: ReservingStore,
    private readonly logger?: Logger,
  ) {
    this.limiter = getGraphQLRateLimiter({
      store,
      identifyContext: (context: RequestContext) => context.caller.id,
    });
  }

  /** Counts the call; sets the X-RateLimit headers; throws `rate_limit_exceeded` past the limit. */
  async check(context: RequestContext, info: GraphQLResolveInfo, args: Record<string, unknown>): Promise<void> {
    const max = this.maxFor(info.fieldName, context);
    const { windowMs } = this.limits;
    let refusal: string | undefined;
    let timestamps: readonly number[];
    try {
      refusal = await this.limiter(
        { parent: undefined, args, context, info },
        { max, window: String(windowMs) },
      );
      timestamps = await this.store.peek({ contextIdentity: context.caller.id, fieldIdentity: info.fieldName });
    } catch (error) {
      // A broken counter store must not take the API down with it: log and let the call through.
      this.logger?.error({ err: error, requestId: context.requestId }, 'rate limit store failed; request not limited');
      return;
    }
    const now = Date.now();
    const live = timestamps.filter((timestamp) => timestamp + windowMs > now);
    const oldest = live.length > 0 ? Math.min(...live) : now;
    const resetAt = oldest + windowMs;
    context.responseHeaders.set('x-ratelimit-limit', String(max));
    context.responseHeaders.set('x-ratelimit-remaining', String(Math.max(0, max - live.length)));
    context.responseHeaders.set('x-ratelimit-reset', String(Math.ceil(resetAt / 1000)));
    if (refusal !== undefined) {
      const retryAfter = Math.max(1, Math.ceil((resetAt - now) / 1000));
      context.responseHeaders.set('retry-after', String(retryAfter));
      throw new ApiError(
        'rate_limit_exceeded',
        429,
        `Rate limit exceeded for ${info.fieldName}`,
        `at most ${max} ${info.fieldName} requests per ${windowMs / 1000} s; retry after ${retryAfter} s`,
      );
    }
  }

  private maxFor(fieldName: string, context: RequestContext): number {
    const own = context.caller.limits;
    if (fieldName === 'generate') return own?.generate ?? this.limits.generate;
    if (fieldName === 'generate_batch') return own?.generateBatch ?? this.limits.generateBatch;
    return own?.other ?? this.limits.other;
  }
}
