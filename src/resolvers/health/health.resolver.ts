import { Ctx, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { DetailedStatusResponse, HealthResponse, ReadinessResponse } from './health.type';

@Resolver()
export class HealthResolver {
  @Query(() => HealthResponse, { description: 'Basic liveness check of the service.' })
  health(@Ctx() context: RequestContext): HealthResponse {
    return context.services.status.health();
  }

  @Query(() => DetailedStatusResponse, { description: 'Detailed status with resource usage, providers and warnings.' })
  status(@Ctx() context: RequestContext): Promise<DetailedStatusResponse> {
    return context.services.status.status();
  }

  @Query(() => ReadinessResponse, { description: 'Readiness probe: whether the service should receive traffic.' })
  ready(@Ctx() context: RequestContext): Promise<ReadinessResponse> {
    return context.services.status.readiness();
  }
}
