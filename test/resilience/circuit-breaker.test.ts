/**
 * The routing layer's building blocks on their own (issue 16): an endpoint's circuit breaker driven by
 * an injected clock (no sleeps), the reading of an upstream's Retry-After headers, and the order in
 * which replicas of one model are tried (least requests in flight first, ties taking turns).
 */
import { CircuitBreaker } from '../../src/pipeline/routing/circuit-breaker';
import { Endpoints } from '../../src/pipeline/routing/endpoints';
import { retryAfterMsOf } from '../../src/providers/openai-sdk/retry-after';

/** A monotonic clock the test moves by hand. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

const THRESHOLD = 3;
const HALF_OPEN_MS = 10_000;

function breakerWithClock(): { breaker: CircuitBreaker; clock: ReturnType<typeof manualClock> } {
  const clock = manualClock();
  return { breaker: new CircuitBreaker({ failureThreshold: THRESHOLD, halfOpenAfterMs: HALF_OPEN_MS, now: clock.now }), clock };
}

/** One call through the breaker that fails; throws if the breaker refused it. */
function failOnce(breaker: CircuitBreaker): void {
  const permit = breaker.tryAcquire();
  if (!permit) throw new Error('the breaker refused a call the test expected it to let through');
  permit.failed();
}

function succeedOnce(breaker: CircuitBreaker): void {
  const permit = breaker.tryAcquire();
  if (!permit) throw new Error('the breaker refused a call the test expected it to let through');
  permit.succeeded();
}

/** Opens the breaker with THRESHOLD failures in a row. */
function trip(breaker: CircuitBreaker): void {
  for (let failure = 0; failure < THRESHOLD; failure += 1) failOnce(breaker);
}

describe('CircuitBreaker', () => {
  it('starts closed and lets calls through', () => {
    const { breaker } = breakerWithClock();

    expect(breaker.state).toBe('closed');
    expect(breaker.retryInMs).toBe(0);
    expect(breaker.tryAcquire()).toBeDefined();
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('stays closed below the threshold of consecutive failures and opens at it', () => {
    const { breaker } = breakerWithClock();

    for (let failure = 1; failure < THRESHOLD; failure += 1) {
      failOnce(breaker);
      expect(breaker.state).toBe('closed');
      expect(breaker.tryAcquire()).toBeDefined();
    }
    failOnce(breaker);

    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('counts only consecutive failures: a success in between resets the count', () => {
    const { breaker } = breakerWithClock();

    failOnce(breaker);
    failOnce(breaker);
    succeedOnce(breaker);
    failOnce(breaker);
    failOnce(breaker);
    expect(breaker.state).toBe('closed');

    failOnce(breaker);
    expect(breaker.state).toBe('open');
  });

  it('counts calls that were let through together and fail together (concurrent callers)', () => {
    const { breaker } = breakerWithClock();
    const permits = Array.from({ length: THRESHOLD }, () => breaker.tryAcquire());

    expect(permits.every((permit) => permit !== undefined)).toBe(true);
    for (const permit of permits) permit!.failed();

    expect(breaker.state).toBe('open');
  });

  it('settles a permit once: a second failed() on the same call does not count again', () => {
    const { breaker } = breakerWithClock();
    const permit = breaker.tryAcquire()!;
    permit.failed();
    permit.failed();
    permit.failed();
    failOnce(breaker);

    expect(breaker.state).toBe('closed');
  });

  it('an abandoned call says nothing about the endpoint: it neither counts as a failure nor resets the count', () => {
    const { breaker } = breakerWithClock();

    failOnce(breaker);
    failOnce(breaker);
    breaker.tryAcquire()!.abandoned();
    expect(breaker.state).toBe('closed');

    failOnce(breaker);
    expect(breaker.state).toBe('open');
  });

  it('refuses every call while open, and says how long until a probe may go through', () => {
    const { breaker, clock } = breakerWithClock();
    trip(breaker);

    expect(breaker.retryInMs).toBe(HALF_OPEN_MS);
    clock.advance(4_000);
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.retryInMs).toBe(HALF_OPEN_MS - 4_000);

    clock.advance(HALF_OPEN_MS - 4_000 - 1);
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.retryInMs).toBe(1);
  });

  it('after the half-open period lets exactly one probe through; a concurrent caller is refused at once, not queued', () => {
    const { breaker, clock } = breakerWithClock();
    trip(breaker);
    clock.advance(HALF_OPEN_MS);

    expect(breaker.state).toBe('half_open');
    expect(breaker.retryInMs).toBe(0);
    const probe = breaker.tryAcquire();
    expect(probe).toBeDefined();

    // While the probe is out, everyone else is turned away synchronously, however long the probe takes.
    expect(breaker.tryAcquire()).toBeUndefined();
    clock.advance(5 * HALF_OPEN_MS);
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.state).toBe('half_open');
    probe!.abandoned();
  });

  it('closes when the probe succeeds, with a fresh failure count', () => {
    const { breaker, clock } = breakerWithClock();
    trip(breaker);
    clock.advance(HALF_OPEN_MS);

    breaker.tryAcquire()!.succeeded();

    expect(breaker.state).toBe('closed');
    expect(breaker.retryInMs).toBe(0);
    expect(breaker.tryAcquire()).toBeDefined();
    expect(breaker.tryAcquire()).toBeDefined();
    // The failures that opened it are forgotten: it takes a full threshold again.
    for (let failure = 1; failure < THRESHOLD; failure += 1) failOnce(breaker);
    expect(breaker.state).toBe('closed');
    failOnce(breaker);
    expect(breaker.state).toBe('open');
  });

  it('reopens for another full period when the probe fails, counted from the failure', () => {
    const { breaker, clock } = breakerWithClock();
    trip(breaker);
    clock.advance(HALF_OPEN_MS + 2_500);
    const probe = breaker.tryAcquire()!;
    clock.advance(700); // the probe took a while to fail

    probe.failed();

    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.retryInMs).toBe(HALF_OPEN_MS);
    clock.advance(HALF_OPEN_MS - 1);
    expect(breaker.tryAcquire()).toBeUndefined();
    clock.advance(1);
    expect(breaker.state).toBe('half_open');
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('lets the next caller probe when the probe is abandoned (its client left)', () => {
    const { breaker, clock } = breakerWithClock();
    trip(breaker);
    clock.advance(HALF_OPEN_MS);
    breaker.tryAcquire()!.abandoned();

    expect(breaker.state).toBe('half_open');
    const next = breaker.tryAcquire();
    expect(next).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined();
    next!.succeeded();
    expect(breaker.state).toBe('closed');
  });

  it('stays open when a call let through before it opened succeeds late: only the probe closes it', () => {
    const { breaker, clock } = breakerWithClock();
    const late = breaker.tryAcquire()!;
    trip(breaker);

    late.succeeded();

    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    clock.advance(HALF_OPEN_MS);
    breaker.tryAcquire()!.succeeded();
    expect(breaker.state).toBe('closed');
  });

  it('does not extend the open period when a call let through before it opened fails late', () => {
    const { breaker, clock } = breakerWithClock();
    const late = breaker.tryAcquire()!;
    trip(breaker);
    clock.advance(HALF_OPEN_MS - 100);

    late.failed();

    expect(breaker.retryInMs).toBe(100);
    clock.advance(100);
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a failure threshold of %p', (failureThreshold) => {
    expect(() => new CircuitBreaker({ failureThreshold, halfOpenAfterMs: 1000, now: () => 0 })).toThrow(RangeError);
  });
});

describe('retryAfterMsOf (an upstream’s requested wait)', () => {
  const NOW = Date.UTC(2025, 0, 15, 12, 0, 0); // whole seconds: HTTP dates carry no milliseconds
  const read = (headers: Record<string, string>): number | undefined => retryAfterMsOf(new Headers(headers), NOW);

  it.each([
    ['0', 0],
    ['1', 1000],
    ['30', 30_000],
    ['1.5', 1500],
    [' 7 ', 7000],
  ])('reads retry-after "%s" as seconds (%p ms)', (value, expected) => {
    expect(read({ 'retry-after': value })).toBe(expected);
  });

  it('reads retry-after as an HTTP date relative to now', () => {
    expect(read({ 'retry-after': new Date(NOW + 45_000).toUTCString() })).toBe(45_000);
  });

  it('reads an HTTP date already past as no wait at all', () => {
    expect(read({ 'retry-after': new Date(NOW - 60_000).toUTCString() })).toBe(0);
  });

  it("reads OpenAI's retry-after-ms, in milliseconds, and prefers it to retry-after", () => {
    expect(read({ 'retry-after-ms': '250' })).toBe(250);
    expect(read({ 'retry-after-ms': '12.5' })).toBe(12.5);
    expect(read({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
  });

  it('falls back to retry-after when retry-after-ms is unreadable or negative', () => {
    expect(read({ 'retry-after-ms': 'soon', 'retry-after': '2' })).toBe(2000);
    expect(read({ 'retry-after-ms': '-5', 'retry-after': '3' })).toBe(3000);
  });

  it.each([['soon'], ['-1'], ['1e3'], ['0x10'], ['Tomorrow at noon'], ['abc 12'], ['']])(
    'reads retry-after "%s" as no known wait',
    (value) => {
      expect(read({ 'retry-after': value })).toBeUndefined();
    },
  );

  it('reads no headers, or none of the two, as no known wait', () => {
    expect(retryAfterMsOf(undefined, NOW)).toBeUndefined();
    expect(read({})).toBeUndefined();
    expect(read({ 'x-ratelimit-reset-requests': '1s' })).toBeUndefined();
  });

  it('caps an absurd wait at one day', () => {
    const day = 24 * 60 * 60 * 1000;
    expect(read({ 'retry-after': '999999999' })).toBe(day);
    expect(read({ 'retry-after-ms': '1e12' })).toBe(day);
    expect(read({ 'retry-after': new Date(NOW + 30 * day).toUTCString() })).toBe(day);
  });
});

describe('Endpoints.leastBusyFirst (the order replicas of one model are tried)', () => {
  const endpointsWith = (inFlight: Record<string, number>) => {
    const endpoints = new Endpoints({ failureThreshold: 3, halfOpenAfterMs: 1000, now: () => 0 });
    const replicas = Object.entries(inFlight).map(([name, count]) => {
      const endpoint = endpoints.of(name);
      for (let call = 0; call < count; call += 1) endpoint.started();
      return { name, endpoint };
    });
    return { endpoints, replicas };
  };
  const names = (ordered: ReadonlyArray<{ name: string }>): string[] => ordered.map((replica) => replica.name);

  it('puts the replica with the fewest calls in flight first, then the next fewest', () => {
    const { endpoints, replicas } = endpointsWith({ a: 4, b: 0, c: 2 });

    for (let call = 0; call < 5; call += 1) expect(names(endpoints.leastBusyFirst('model', replicas))).toEqual(['b', 'c', 'a']);
  });

  it('lets tied replicas take turns, so sequential requests spread over all of them', () => {
    const { endpoints, replicas } = endpointsWith({ a: 0, b: 0, c: 0 });

    const orders = Array.from({ length: 6 }, () => names(endpoints.leastBusyFirst('model', replicas)));

    for (const order of orders) expect([...order].sort()).toEqual(['a', 'b', 'c']);
    const firsts = orders.map((order) => order[0]);
    expect(firsts.filter((name) => name === 'a')).toHaveLength(2);
    expect(firsts.filter((name) => name === 'b')).toHaveLength(2);
    expect(firsts.filter((name) => name === 'c')).toHaveLength(2);
  });

  it('rotates only among the tied least busy: a busier replica stays last', () => {
    const { endpoints, replicas } = endpointsWith({ a: 1, b: 0, c: 0 });

    const orders = Array.from({ length: 4 }, () => names(endpoints.leastBusyFirst('model', replicas)));

    for (const order of orders) expect(order[2]).toBe('a');
    expect(new Set(orders.map((order) => order[0]))).toEqual(new Set(['b', 'c']));
  });

  it('follows the counts as they change', () => {
    const { endpoints, replicas } = endpointsWith({ a: 0, b: 1 });
    expect(names(endpoints.leastBusyFirst('model', replicas))[0]).toBe('a');

    for (let call = 0; call < 3; call += 1) endpoints.of('a').started();
    expect(names(endpoints.leastBusyFirst('model', replicas))).toEqual(['b', 'a']);
  });

  it("keeps each model's turns apart, so one model's requests never skew another's rotation", () => {
    const { endpoints, replicas } = endpointsWith({ a: 0, b: 0 });

    const firsts = Array.from({ length: 4 }, () => {
      endpoints.leastBusyFirst('fallback', replicas);
      return names(endpoints.leastBusyFirst('model', replicas))[0];
    });

    expect(firsts).toEqual(['a', 'b', 'a', 'b']);
  });

  it('returns a copy and leaves the given list alone', () => {
    const { endpoints, replicas } = endpointsWith({ a: 2, b: 0 });
    const before = [...replicas];

    const ordered = endpoints.leastBusyFirst('model', replicas);

    expect(replicas).toEqual(before);
    expect(ordered).not.toBe(replicas);
    expect(names(endpoints.leastBusyFirst('model', replicas.slice(0, 1)))).toEqual(['a']);
    expect(endpoints.leastBusyFirst('model', [])).toEqual([]);
  });

  it('keeps one state per endpoint name, and reports an endpoint it never saw as closed', () => {
    const { endpoints } = endpointsWith({ a: 0 });

    expect(endpoints.of('a')).toBe(endpoints.of('a'));
    expect(endpoints.of('a')).not.toBe(endpoints.of('b'));
    expect(endpoints.breakerState('never-seen')).toBe('closed');
  });
});
