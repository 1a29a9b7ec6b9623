/**
 * The life of each local model in memory, one slot per model id: loaded on first use, replaced when
 * its file changes, unloaded when idle or when its file is gone.
 *
 * Every load and unload of one id runs in turn (one queue per id), so concurrent requests for a new
 * version load it once. A model is disposed only when no lease on it is held, so a generation never
 * loses its model mid-way; a replaced or removed model is disposed when its last lease ends. A model
 * is always either in its slot or waiting for its last lease, never unreferenced.
 */

export interface ModelSource {
  /** Changes when the model's file is replaced. */
  readonly version: string;
}

/** Why a model left memory: its file changed, its file is gone (or unusable), it sat idle, or the provider closed. */
export type UnloadReason = 'replaced' | 'removed' | 'idle' | 'closed';

export type ModelSlotEvent =
  | { readonly type: 'loaded'; readonly id: string; readonly version: string; readonly loadMs: number }
  | { readonly type: 'load_failed'; readonly id: string; readonly version: string; readonly error: unknown }
  | { readonly type: 'unloaded'; readonly id: string; readonly version: string; readonly reason: UnloadReason }
  | {
      readonly type: 'dispose_failed';
      readonly id: string;
      readonly version: string;
      readonly reason: UnloadReason;
      readonly error: unknown;
    };

export interface ModelSlotsSettings<Source extends ModelSource, Model> {
  /** The model's source as it is now (its file); throws when there is nothing loadable. */
  readonly locate: (id: string) => Promise<Source>;
  /** Throws when the source cannot load; the error is kept for that version and given to its later requests. */
  readonly load: (id: string, source: Source) => Promise<Model>;
  readonly dispose: (model: Model) => Promise<void>;
  /** Loads, unloads and failures, for the log. */
  readonly observe?: (event: ModelSlotEvent) => void;
  readonly now?: () => number;
}

/** A model lent to one piece of work; it stays in memory until released. */
export interface ModelLease<Model> {
  readonly model: Model;
  /** Idempotent. */
  release(): void;
}

export interface ModelSlotView {
  readonly id: string;
  readonly version: string;
  /** ready: serves new requests; failed: its load failed; retiring: replaced or removed, finishing its leases. */
  readonly state: 'ready' | 'failed' | 'retiring';
  readonly leases: number;
}

type Outcome<Model> = { readonly kind: 'ready'; readonly model: Model } | { readonly kind: 'failed'; readonly error: unknown };

interface Entry<Model> {
  readonly id: string;
  readonly version: string;
  readonly outcome: Outcome<Model>;
  leases: number;
  lastUsedAt: number;
  retiring?: UnloadReason;
  disposed: boolean;
  readonly gone: Promise<void>;
  markGone(): void;
}

export class ModelSlots<Source extends ModelSource, Model> {
  /** The entry that serves new requests, per id. */
  private readonly current = new Map<string, Entry<Model>>();
  /** Every entry whose model is loaded and not yet disposed, in a slot or retiring. */
  private readonly inMemory = new Set<Entry<Model>>();
  /** The tail of each id's queue of loads and unloads. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly settings: ModelSlotsSettings<Source, Model>) {
    this.now = settings.now ?? Date.now;
  }

  /** Models held in memory, retiring ones included: loads minus disposals. */
  get loadedCount(): number {
    return this.inMemory.size;
  }

  /**
   * Lends the model for `version` (what the request saw on disk), loading it first if needed. When
   * another version is in the slot, the disk decides: the newest file is loaded once and the old
   * model retires, disposed when its last lease ends.
   */
  acquire(id: string, version: string): Promise<ModelLease<Model>> {
    const entry = this.current.get(id);
    // The per-request path: no queue once the model is in its slot.
    if (!this.closed && entry?.version === version) return this.lend(entry);
    return this.exclusive(id, async () => {
      if (this.closed) throw new Error('local models are closed');
      let serving = this.current.get(id);
      if (serving?.version !== version) {
        // The request may have looked before a replacement: the disk decides which version to serve.
        const source = await this.settings.locate(id);
        if (serving?.version !== source.version) {
          if (serving) await this.retire(serving, 'replaced');
          serving = await this.load(id, source);
        }
      }
      return this.lend(serving);
    });
  }

  /** The load error kept for this version of the model, if its load failed. */
  failure(id: string, version: string): unknown {
    const entry = this.current.get(id);
    return entry?.version === version && entry.outcome.kind === 'failed' ? entry.outcome.error : undefined;
  }

  /** The version in the slot (loaded or failed), if any. */
  versionOf(id: string): string | undefined {
    return this.current.get(id)?.version;
  }

  /** Checks the slot against the disk: a model whose file changed or is gone retires. */
  refresh(id: string): Promise<void> {
    if (!this.current.has(id)) return Promise.resolve();
    return this.exclusive(id, async () => {
      const entry = this.current.get(id);
      if (!entry) return;
      const source = await this.settings.locate(id).catch(() => undefined);
      if (source?.version !== entry.version) await this.retire(entry, source ? 'replaced' : 'removed');
    });
  }

  /** Unloads every model that has had no lease for `idleMs`. */
  async unloadIdle(idleMs: number): Promise<void> {
    const isIdle = (entry: Entry<Model>): boolean =>
      entry.outcome.kind === 'ready' && entry.leases === 0 && this.now() - entry.lastUsedAt >= idleMs;
    const candidates = [...this.current.values()].filter(isIdle);
    await Promise.all(
      candidates.map((entry) =>
        this.exclusive(entry.id, async () => {
          if (this.current.get(entry.id) === entry && isIdle(entry)) await this.retire(entry, 'idle');
        }),
      ),
    );
  }

  /** Every slot and every retiring model, for status and tests. */
  views(): ModelSlotView[] {
    const entries = new Set([...this.current.values(), ...this.inMemory]);
    return [...entries].map((entry) => ({
      id: entry.id,
      version: entry.version,
      state: entry.retiring ? 'retiring' : entry.outcome.kind,
      leases: entry.leases,
    }));
  }

  /** Unloads everything; resolves once every model is disposed, after the leases still held end. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.current.keys()].map((id) =>
        this.exclusive(id, async () => {
          const entry = this.current.get(id);
          if (entry) await this.retire(entry, 'closed');
        }),
      ),
    );
    await Promise.all([...this.inMemory].map((entry) => entry.gone));
  }

  /** Runs `work` after every earlier load and unload of `id`. */
  private exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(id) ?? Promise.resolve()).then(work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }

  /** Only inside the id's queue. */
  private async load(id: string, source: Source): Promise<Entry<Model>> {
    const startedAt = this.now();
    const outcome = await this.settings.load(id, source).then(
      (model): Outcome<Model> => ({ kind: 'ready', model }),
      (error: unknown): Outcome<Model> => ({ kind: 'failed', error }),
    );
    let markGone = (): void => undefined;
    const gone = new Promise<void>((resolve) => {
      markGone = resolve;
    });
    const entry: Entry<Model> = {
      id,
      version: source.version,
      outcome,
      leases: 0,
      lastUsedAt: this.now(),
      disposed: false,
      gone,
      markGone,
    };
    this.current.set(id, entry);
    if (outcome.kind === 'ready') {
      this.inMemory.add(entry);
      this.settings.observe?.({ type: 'loaded', id, version: source.version, loadMs: this.now() - startedAt });
    } else {
      entry.disposed = true;
      entry.markGone();
      this.settings.observe?.({ type: 'load_failed', id, version: source.version, error: outcome.error });
    }
    return entry;
  }

  /** Synchronous up to the lease, so nothing can retire the entry between the check and the count. */
  private lend(entry: Entry<Model>): Promise<ModelLease<Model>> {
    if (entry.outcome.kind === 'failed') return Promise.reject(entry.outcome.error);
    entry.leases += 1;
    entry.lastUsedAt = this.now();
    let released = false;
    return Promise.resolve({
      model: entry.outcome.model,
      release: () => {
        if (released) return;
        released = true;
        entry.leases -= 1;
        entry.lastUsedAt = this.now();
        if (entry.leases === 0 && entry.retiring) void this.exclusive(entry.id, () => this.dispose(entry));
      },
    });
  }

  /** Only inside the id's queue: takes the entry out of its slot, disposing it now if no lease holds it. */
  private async retire(entry: Entry<Model>, reason: UnloadReason): Promise<void> {
    if (this.current.get(entry.id) === entry) this.current.delete(entry.id);
    entry.retiring ??= reason;
    if (entry.leases === 0) await this.dispose(entry);
  }

  /** Only inside the id's queue; at most once per entry. */
  private async dispose(entry: Entry<Model>): Promise<void> {
    if (entry.disposed || entry.outcome.kind !== 'ready') return;
    entry.disposed = true;
    const reason = entry.retiring ?? 'closed';
    try {
      await this.settings.dispose(entry.outcome.model);
      this.settings.observe?.({ type: 'unloaded', id: entry.id, version: entry.version, reason });
    } catch (error) {
      this.settings.observe?.({ type: 'dispose_failed', id: entry.id, version: entry.version, reason, error });
    } finally {
      this.inMemory.delete(entry);
      entry.markGone();
    }
  }
}
