/**
 * The Deadline's signal ends a generation: at its timeout, or when a source it was given aborts (the
 * request's ClientAbort, which makes no AbortSignal unless one is read; or an AbortSignal, whose
 * reason it keeps). Disposed, it listens to nothing.
 */
import { ClientAbort } from '../../src/pipeline/client-abort';
import { Deadline } from '../../src/pipeline/deadline';

describe('ClientAbort', () => {
  it('tells each listener once, and not one that stopped listening', () => {
    const client = new ClientAbort();
    const heard: string[] = [];
    client.onAbort(() => heard.push('a'));
    const stop = client.onAbort(() => heard.push('b'));
    stop();
    expect(client.aborted).toBe(false);
    client.abort();
    client.abort();
    expect(heard).toEqual(['a']);
    expect(client.aborted).toBe(true);
  });

  it('tells a listener added after the abort at once', () => {
    const client = new ClientAbort();
    client.abort();
    const listener = jest.fn();
    client.onAbort(listener);
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it('makes its AbortSignal when read, aborted if the client already left, and aborts it later otherwise', () => {
    const gone = new ClientAbort();
    gone.abort();
    expect(gone.signal.aborted).toBe(true);

    const staying = new ClientAbort();
    const { signal } = staying;
    expect(signal.aborted).toBe(false);
    expect(staying.signal).toBe(signal);
    staying.abort();
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DOMException).name).toBe('AbortError');
  });
});

describe('Deadline', () => {
  afterEach(() => jest.useRealTimers());

  it('aborts when its time is up, as expired, with a TimeoutError', () => {
    jest.useFakeTimers();
    const deadline = new Deadline(1000, [new ClientAbort()]);
    jest.advanceTimersByTime(999);
    expect(deadline.signal.aborted).toBe(false);
    jest.advanceTimersByTime(1);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.expired).toBe(true);
    expect((deadline.signal.reason as DOMException).name).toBe('TimeoutError');
    deadline.dispose();
  });

  it('aborts when the client leaves, not as expired; at once when it had already left', () => {
    const client = new ClientAbort();
    const deadline = new Deadline(60_000, [undefined, client]);
    expect(deadline.signal.aborted).toBe(false);
    client.abort();
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.expired).toBe(false);
    deadline.dispose();

    const late = new Deadline(60_000, [client]);
    expect(late.signal.aborted).toBe(true);
    late.dispose();
  });

  it("aborts with an AbortSignal source's reason (a stream's stop)", () => {
    const stop = new AbortController();
    const deadline = new Deadline(60_000, [new ClientAbort(), stop.signal]);
    stop.abort('consumer_left');
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe('consumer_left');
    deadline.dispose();
  });

  it('once disposed, no longer listens to its sources', () => {
    const client = new ClientAbort();
    const stop = new AbortController();
    const deadline = new Deadline(60_000, [client, stop.signal]);
    deadline.dispose();
    client.abort();
    stop.abort();
    expect(deadline.signal.aborted).toBe(false);
  });
});
