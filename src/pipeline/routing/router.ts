import { modelNotFound, modelUnavailable } from '../../errors/api-error';
import type { LanguageModelProvider, ModelDescriptor } from '../../providers/provider';
import type { ProviderRegistry, ResolvedModel } from '../../providers/registry';
import { checkModelId } from '../../services/generation-parameters';
import type { Endpoint, Endpoints } from './endpoints';

/** One endpoint that may serve a generation, for the requested model or one of its fallbacks. */
export interface Candidate {
  readonly model: ModelDescriptor;
  readonly provider: LanguageModelProvider;
  readonly endpoint: Endpoint;
}

/** One model's replicas; ordered least busy first only when the group is reached. */
export interface CandidateGroup {
  readonly modelId: string;
  readonly replicas: readonly Candidate[];
}

/** Where a generation may go, in the order to try: the model's endpoints, then each fallback's. */
export interface RoutePlan {
  /** The model asked for: admission counts its prompt, the answer and the ledger row name it. */
  readonly requested: ResolvedModel;
  readonly groups: readonly CandidateGroup[];
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
    const fallbackIds = this.fallbacks.get(requested.model.id) ?? [];
    const fallbackReplicas = await Promise.all(fallbackIds.map((id) => this.registry.findReplicas(id)));
    // Endpoints that discovery found down are left out: a request should not wait on what is known dead.
    const groups = [replicas, ...fallbackReplicas]
      .map((group) => group.filter((replica) => replica.model.unavailableReason === undefined))
      .filter((group) => group.length > 0)
      .map(
        (group): CandidateGroup => ({
          modelId: group[0]!.model.id,
          // Field by field: a spread followed by a new key is a new hidden class for every request.
          replicas: group.map((replica) => ({
            model: replica.model,
            provider: replica.provider,
            endpoint: this.endpoints.of(replica.provider.name),
          })),
        }),
      );
    if (groups.length === 0) throw modelUnavailable(modelId, requested.model.unavailableReason ?? 'no endpoint can serve it');
    return { requested: replicas.find((replica) => replica.model.unavailableReason === undefined) ?? requested, groups };
  }

  /** The model's own endpoint, for checks that need no routing (an evaluation's models at creation). */
  async resolve(modelId: string): Promise<ResolvedModel> {
    return (await this.plan(modelId)).requested;
  }
}

/** Every candidate of a plan, groups in order (replicas in catalog order). */
export function candidatesOf(plan: RoutePlan): Candidate[] {
  return plan.groups.flatMap((group) => group.replicas);
}
