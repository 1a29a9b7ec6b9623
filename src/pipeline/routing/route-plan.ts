import { modelNotFound, modelUnavailable } from '../../errors/api-error';
import type { LanguageModelProvider, ModelDescriptor } from '../../providers/provider';
import type { ProviderRegistry, ResolvedModel } from '../../providers/registry';
import { checkModelId } from '../../services/generation-parameters';
import type { EndpointState, Endpoints } from './endpoints';

/** One endpoint that may serve a generation, for the requested model or one of its fallbacks. */
export interface Candidate {
  readonly model: ModelDescriptor;
  readonly provider: LanguageModelProvider;
  readonly endpoint: EndpointState;
}

/** Where a generation may go, in the order to try: the model's endpoints (least busy first), then each fallback's. */
export interface RoutePlan {
  /** The model asked for: admission counts and prices against it; the answer names it. */
  readonly requested: ResolvedModel;
  readonly candidates: readonly Candidate[];
}

/** Model ids to candidate endpoints, from the catalog's `endpoints` and `fallbacks`. */
export class Router {
  constructor(
    private readonly registry: ProviderRegistry,
    readonly endpoints: Endpoints,
    private readonly fallbacks: ReadonlyMap<string, readonly string[]>,
  ) {}

  /** Refuses an unknown model (404), and one none of whose endpoints or fallbacks can serve now (503). */
  async plan(modelId: string): Promise<RoutePlan> {
    const replicas = await this.registry.findReplicas(checkModelId(modelId));
    const requested = replicas[0];
    if (!requested) throw modelNotFound(modelId);
    const fallbackReplicas = await Promise.all((this.fallbacks.get(requested.model.id) ?? []).map((id) => this.registry.findReplicas(id)));
    // Endpoints that discovery found down are left out: a request should not wait on what is known dead.
    const candidates = [replicas, ...fallbackReplicas].flatMap((group) =>
      this.endpoints.leastBusyFirst(
        group
          .filter((replica) => replica.model.unavailableReason === undefined)
          .map((replica) => ({ ...replica, endpoint: this.endpoints.of(replica.provider.name) })),
      ),
    );
    if (candidates.length === 0) throw modelUnavailable(modelId, requested.model.unavailableReason ?? 'no endpoint can serve it');
    return { requested: replicas.find((replica) => replica.model.unavailableReason === undefined) ?? requested, candidates };
  }

  /** The model's own (first) endpoint, for checks that need no routing (an evaluation's models at creation). */
  async resolve(modelId: string): Promise<ResolvedModel> {
    return (await this.plan(modelId)).requested;
  }
}
