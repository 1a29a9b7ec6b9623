import { type BreakerSettings, type BreakerState, CircuitBreaker } from './circuit-breaker';

/** What the router keeps about one endpoint (a provider instance): its breaker and its calls in flight. */
export class Endpoint {
  readonly breaker: CircuitBreaker;
  private running = 0;

  constructor(
    readonly name: string,
    breakerSettings: BreakerSettings,
  ) {
    this.breaker = new CircuitBreaker(breakerSettings);
  }

  /** Calls sent to it that have not ended (a stream counts until it ends). */
  get inFlight(): number {
    return this.running;
  }

  /** Counts one call in flight until the returned function is called; calling it twice counts once. */
  started(): () => void {
    this.running += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.running -= 1;
    };
  }
}

/** Every endpoint's state, made on first use; shared by all requests of this process. */
export class Endpoints {
  private readonly byName = new Map<string, Endpoint>();
  /** Per replica group (a model id): whose turn it is among replicas equally busy. */
  private readonly turns = new Map<string, number>();

  constructor(private readonly breakerSettings: BreakerSettings) {}

  of(name: string): Endpoint {
    let endpoint = this.byName.get(name);
    if (!endpoint) {
      endpoint = new Endpoint(name, this.breakerSettings);
      this.byName.set(name, endpoint);
    }
    return endpoint;
  }

  breakerState(name: string): BreakerState {
    return this.byName.get(name)?.breaker.state ?? 'closed';
  }

  /**
   * A model's replicas, least requests in flight first; ties take turns (per model), so sequential
   * requests spread over replicas too. Called when the group is reached, so the counts are current.
   */
  leastBusyFirst<T extends { readonly endpoint: Endpoint }>(modelId: string, replicas: readonly T[]): T[] {
    if (replicas.length < 2) return [...replicas];
    const turn = this.turns.get(modelId) ?? 0;
    this.turns.set(modelId, (turn + 1) % replicas.length);
    const offset = turn % replicas.length;
    const rotated = [...replicas.slice(offset), ...replicas.slice(0, offset)];
    return rotated.sort((left, right) => left.endpoint.inFlight - right.endpoint.inFlight);
  }
}
