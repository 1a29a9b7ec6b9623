/**
 * Lends a fixed set of items (context sequences) to one request at a time. Requests beyond the
 * pool wait in arrival order; a waiter whose signal aborts leaves the queue.
 */
export class SequencePool<T> {
  private readonly free: T[];
  private readonly waiters: Array<{ grant: (item: T) => void; reject: (error: unknown) => void; signal?: AbortSignal }> = [];

  constructor(items: readonly T[]) {
    if (items.length === 0) throw new RangeError('SequencePool needs at least one item');
    this.free = [...items];
  }

  get available(): number {
    return this.free.length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  acquire(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const item = this.free.pop();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        grant: (granted: T) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(granted);
        },
        reject,
        signal,
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(item: T): void {
    const next = this.waiters.shift();
    if (next) next.grant(item);
    else this.free.push(item);
  }
}
