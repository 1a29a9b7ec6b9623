import type { Caller } from './auth/caller';
import type { GenerationService } from './services/generation.service';
import { createGenerationLoader, type GenerationLoader } from './services/generation-loader';
import type { ModelService } from './services/model.service';
import type { SystemStatusService } from './services/system-status.service';

export interface Services {
  readonly generation: GenerationService;
  readonly models: ModelService;
  readonly status: SystemStatusService;
}

/** Everything a resolver may use for one request. */
export interface RequestContext {
  readonly requestId: string;
  readonly services: Services;
  /** Per request, so batching never mixes two callers' prompts. */
  readonly generationLoader: GenerationLoader;
  readonly caller: Caller;
  /** Headers resolvers add to the HTTP response (rate-limit figures); the HTTP layer writes them. */
  readonly responseHeaders: Map<string, string>;
  /** Aborted when the client goes away. */
  readonly signal?: AbortSignal;
}

export function createRequestContext(services: Services, requestId: string, caller: Caller, signal?: AbortSignal): RequestContext {
  return { requestId, services, caller, responseHeaders: new Map(), generationLoader: createGenerationLoader(), signal };
}
