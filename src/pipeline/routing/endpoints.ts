import { type BreakerSettings, type BreakerState, CircuitBreaker } from './circuit-breaker';

/** What the router keeps about one endpoint (a provider instance): its breaker and its calls in flight. */
export interface EndpointState {
  readonly name: string;
  readonly breaker: CircuitBreaker;
  /** Calls the router has sent it that have not ended (a stream counts until it ends). */
  inFlight: number;
}

/** Every endpoint's state, made on first use; shared by all requests of this process. */
export class Endpoints {
  private readonly byName = new Map<string, EndpointState>();
  private turn = 0;

  constructor(private readonly breakerSettings: BreakerSettings) {}

  of(name: string): EndpointState {
    let state = this.byName.get(name);
    if (!state) {
      state = { name, breaker: new CircuitBreaker(this.breakerSettings), inFlight: 0 };
      this.byName.set(name, state);
    }
    return state;
  }

  breakerState(name: string): BreakerState {
    return this.byName.get(name)?.breaker.state ?? 'closed';
  }

  /** Least requests in flight first; ties take turns, so sequential requests spread over replicas too. */
  leastBusyFirst<T extends { readonly endpoint: EndpointState }>(replicas: readonly T[]): T[] {
    if (replicas.length < 2) return [...replicas];
    const offset = this.turn++ % replicas.length;
    const rotated = [...replicas.slice(offset), ...replicas.slice(0, offset)];
    return rotated.sort((left, right) => left.endpoint.inFlight - right.endpoint.inFlight);
  }
}
