import type { GraphQLResolveInfo } from 'graphql';
import { getGraphQLRateLimiter, type Identity, Store } from 'graphql-rate-limit';
import type { RequestContext } from '../context';
import { ApiError } from '../errors/api-error';
import type { Logger } from '../logger';
import type { RateLimitDecision, RateLimiter } from '../pipeline/admission/rate-limiter';

export interface RateLimits {
  readonly generate: number;
  readonly generateBatch: number;
  readonly other: number;
}

/**
 * graphql-rate-limit's store for one check, answered by the GCRA engine.
 *
 * The library asks its store for the caller's call timestamps in the window and refuses when their count
 * plus one exceeds `max`. GCRA keeps no timestamps, and a list as long as the limit is exactly the cost
 * this engine removes, so the library cannot be handed the real limit. It gets `max: 1` and the engine's
 * verdict as the calls standing in the way of this one: none when the engine admitted the call (and
 * counted it), one when it refused. The library is called `readOnly`: there is nothing to write back.
 */
class EngineVerdictStore extends Store {
  /** Set when the library consults the store: the engine's decision, with the figures for the headers. */
  decision: Promise<RateLimitDecision> | undefined;

  constructor(
    private readonly engine: RateLimiter,
    private readonly limit: number,
  ) {
    super();
  }

  override getForIdentity(identity: Identity): Promise<readonly number[]> {
    this.decision = this.engine.consume(identity.contextIdentity, bucketOf(identity.fieldIdentity), this.limit);
    // The blocking entry is "a call now": it stays inside the library's window filter for a whole window.
    return this.decision.then((decision) => (decision.allowed ? [] : [Date.now()]));
  }

  override setForIdentity(): void {
    // Never called (readOnly): the engine recorded the call in getForIdentity.
  }
}

const identifyCaller = (context: RequestContext): string => context.caller.id;

/**
 * Operations that spend another operation's allowance (the contract's rate-limit conventions): a
 * generation filled from a prompt or streamed is a `generate`, a comparison of several models a `generate_batch`.
 * One counter each, so switching surfaces does not multiply a caller's limit.
 */
const sharedBuckets: Readonly<Record<string, 'generate' | 'generate_batch'>> = {
  generate_from_prompt: 'generate',
  generate_stream: 'generate',
  compare: 'generate_batch',
};

const bucketOf = (operation: string): string => sharedBuckets[operation] ?? operation;

/** The spec's limits per root operation, per caller, shared by GraphQL and REST (both run these resolvers). */
export class OperationRateLimiter {
  constructor(
    private readonly limits: RateLimits,
    private readonly engine: RateLimiter,
    private readonly logger?: Logger,
    /** Told about every refusal (the refusals metric). */
    private readonly onRefused?: () => void,
  ) {}

  /** Counts the call; sets the X-RateLimit headers; throws `rate_limit_exceeded` (with Retry-After) past the limit. */
  check(context: RequestContext, info: GraphQLResolveInfo, args: Record<string, unknown>): Promise<void> {
    const limit = this.limitFor(info.fieldName, context);
    return this.enforce(context, info.fieldName, limit, () => this.decide(context, info, args, limit));
  }

  /**
   * The same count for a hand-written route (a stream that no resolver answers), straight from the
   * engine: `operation` names its bucket, and it counts as one of the "other" operations.
   */
  checkRoute(context: RequestContext, operation: string): Promise<void> {
    context.requestLog?.ranOperation(operation);
    const limit = this.limitFor(operation, context);
    return this.enforce(context, operation, limit, () => this.engine.consume(context.caller.id, bucketOf(operation), limit));
  }

  private async enforce(
    context: RequestContext,
    operation: string,
    limit: number,
    decide: () => Promise<RateLimitDecision>,
  ): Promise<void> {
    let decision: RateLimitDecision;
    try {
      decision = await decide();
    } catch (error) {
      // A broken counter store must not take the API down with it: log and let the call through.
      this.logger?.error({ err: error, requestId: context.requestId }, 'rate limit store failed; request not limited');
      return;
    }
    context.responseHeaders.set('x-ratelimit-limit', String(decision.limit));
    context.responseHeaders.set('x-ratelimit-remaining', String(decision.remaining));
    context.responseHeaders.set('x-ratelimit-reset', String(Math.ceil(decision.resetAt / 1000)));
    if (decision.allowed) return;
    // Rounded up, so a client that waits this long finds the call admitted.
    const retryAfterSeconds = Math.ceil(decision.retryAfterMs / 1000);
    context.responseHeaders.set('retry-after', String(retryAfterSeconds));
    this.onRefused?.();
    throw new ApiError(
      'rate_limit_exceeded',
      429,
      `Rate limit exceeded for ${operation}`,
      `at most ${limit} ${operation} requests per ${this.engine.windowMs / 1000} s; retry after ${retryAfterSeconds} s`,
    );
  }

  /** One check through graphql-rate-limit, whose store is the engine (see EngineVerdictStore). */
  private async decide(
    context: RequestContext,
    info: GraphQLResolveInfo,
    args: Record<string, unknown>,
    limit: number,
  ): Promise<RateLimitDecision> {
    // A store per check carries this caller's limit to the engine and its decision back (a few small objects).
    const store = new EngineVerdictStore(this.engine, limit);
    const gate = getGraphQLRateLimiter({ store, identifyContext: identifyCaller });
    await gate({ parent: undefined, args, context, info }, { max: 1, window: String(this.engine.windowMs), readOnly: true });
    if (!store.decision) throw new Error('graphql-rate-limit did not consult its store');
    // The engine's decision is the verdict; the library's agrees by construction (see EngineVerdictStore).
    return store.decision;
  }

  private limitFor(fieldName: string, context: RequestContext): number {
    const own = context.caller.limits;
    const bucket = bucketOf(fieldName);
    if (bucket === 'generate') return own?.generate ?? this.limits.generate;
    if (bucket === 'generate_batch') return own?.generateBatch ?? this.limits.generateBatch;
    return own?.other ?? this.limits.other;
  }
}
