import { ModelSlots, type ModelSlotEvent, type ModelSource } from '../../src/providers/local/model-slots';

/** A model in memory, as the slots see it: the test counts its loads, disposals and users. */
interface FakeModel {
  readonly id: string;
  readonly version: string;
  readonly serial: number;
  users: number;
  disposed: boolean;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Lets every pending promise callback run: loads, disposals and queued slot work. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What each test's slots did wrong (disposing a busy or disposed model, a failed disposal); checked after every test. */
const violations: string[] = [];

afterEach(() => {
  const found = violations.splice(0);
  expect(found).toEqual([]);
});

/**
 * Real slots over a simulated models directory. Loads and disposals are counted; `holdLoads` makes
 * loads wait for the test, so requests can arrive while one is in progress.
 */
function harness() {
  const disk = new Map<string, string>();
  const broken = new Set<string>();
  const loads: Array<{ id: string; version: string }> = [];
  const disposals: FakeModel[] = [];
  const events: ModelSlotEvent[] = [];
  const order: string[] = [];
  let clock = 0;
  let serial = 0;
  let loadGate: Deferred | undefined;
  const slots = new ModelSlots<ModelSource, FakeModel>({
    locate: async (id) => {
      await Promise.resolve();
      const version = disk.get(id);
      if (version === undefined) throw new Error(`${id} is gone`);
      return { version };
    },
    load: async (id, source) => {
      loads.push({ id, version: source.version });
      order.push(`load ${id}@${source.version}`);
      await loadGate?.promise;
      await Promise.resolve();
      if (broken.has(source.version)) throw new Error(`cannot load ${id}@${source.version}`);
      return { id, version: source.version, serial: ++serial, users: 0, disposed: false };
    },
    dispose: async (model) => {
      // The point of the whole module: a model is never disposed under a running generation, nor twice.
      if (model.users > 0) violations.push(`disposed ${model.id}@${model.version} with ${model.users} generations running`);
      if (model.disposed) violations.push(`disposed ${model.id}@${model.version} twice`);
      order.push(`dispose ${model.id}@${model.version}`);
      await Promise.resolve();
      model.disposed = true;
      disposals.push(model);
    },
    observe: (event) => {
      events.push(event);
      if (event.type === 'dispose_failed') violations.push(`dispose failed: ${String(event.error)}`);
    },
    now: () => clock,
  });

  /** One generation: holds a lease until `finish` resolves, using the model all along. */
  async function generate(id: string, version: string, finish: Promise<void> = Promise.resolve()): Promise<FakeModel> {
    const lease = await slots.acquire(id, version);
    const model = lease.model;
    if (model.disposed) violations.push(`lent ${model.id}@${model.version} after disposing it`);
    model.users += 1;
    try {
      await finish;
      if (model.disposed) violations.push(`disposed ${model.id}@${model.version} during a generation`);
      return model;
    } finally {
      model.users -= 1;
      lease.release();
    }
  }

  return {
    slots,
    disk,
    broken,
    loads,
    disposals,
    events,
    order,
    generate,
    advance: (ms: number) => {
      clock += ms;
    },
    holdLoads: () => {
      loadGate = deferred();
      return loadGate;
    },
  };
}

describe('model slots', () => {
  it('loads a model once for concurrent first requests, and lends the same model to all of them', async () => {
    const { slots, disk, loads, generate } = harness();
    disk.set('demo', 'v1');
    const models = await Promise.all(Array.from({ length: 8 }, () => generate('demo', 'v1')));
    expect(loads).toEqual([{ id: 'demo', version: 'v1' }]);
    expect(new Set(models).size).toBe(1);
    expect(slots.loadedCount).toBe(1);
  });

  it('loads a replaced file exactly once for concurrent requests, and disposes the old model once its generations end', async () => {
    const { slots, disk, loads, disposals, generate } = harness();
    disk.set('demo', 'v1');
    const [firstRun, secondRun] = [deferred(), deferred()];
    const running = [generate('demo', 'v1', firstRun.promise), generate('demo', 'v1', secondRun.promise)];
    await settle();

    disk.set('demo', 'v2');
    const newModels = await Promise.all(Array.from({ length: 6 }, () => generate('demo', 'v2')));
    expect(loads).toEqual([
      { id: 'demo', version: 'v1' },
      { id: 'demo', version: 'v2' },
    ]);
    expect(newModels.every((model) => model.version === 'v2' && model === newModels[0])).toBe(true);
    // Both versions are in memory while the old one finishes its generations.
    expect(disposals).toEqual([]);
    expect(slots.loadedCount).toBe(2);
    expect(slots.views()).toEqual(
      expect.arrayContaining([
        { id: 'demo', version: 'v2', state: 'ready', leases: 0 },
        { id: 'demo', version: 'v1', state: 'retiring', leases: 2 },
      ]),
    );

    firstRun.resolve();
    await running[0];
    await settle();
    expect(disposals).toEqual([]);
    secondRun.resolve();
    const oldModels = await Promise.all(running);
    await settle();
    expect(oldModels.map((model) => model.version)).toEqual(['v1', 'v1']);
    expect(disposals.map((model) => model.version)).toEqual(['v1']);
    expect(slots.loadedCount).toBe(1);
    expect(await generate('demo', 'v2')).toBe(newModels[0]);
  });

  it('makes requests that arrive during a load wait for it instead of loading again', async () => {
    const { slots, disk, loads, holdLoads, generate } = harness();
    disk.set('demo', 'v1');
    const gate = holdLoads();
    const early = Array.from({ length: 5 }, () => generate('demo', 'v1'));
    await settle();
    expect(loads).toHaveLength(1);
    const later = Array.from({ length: 5 }, () => generate('demo', 'v1'));
    await settle();
    expect(loads).toHaveLength(1);
    gate.resolve();
    const models = await Promise.all([...early, ...later]);
    expect(new Set(models).size).toBe(1);
    expect(loads).toHaveLength(1);
    expect(slots.loadedCount).toBe(1);
  });

  it('serves a request that saw the old file from the new model, without loading the old file again', async () => {
    const { disk, loads, disposals, generate } = harness();
    disk.set('demo', 'v1');
    await generate('demo', 'v1');
    disk.set('demo', 'v2');
    expect((await generate('demo', 'v2')).version).toBe('v2');
    // Its look-up ran before the replacement, its turn came after.
    expect((await generate('demo', 'v1')).version).toBe('v2');
    await settle();
    expect(loads.map((load) => load.version)).toEqual(['v1', 'v2']);
    expect(disposals.map((model) => model.version)).toEqual(['v1']);
  });

  it('disposes an idle model before loading its replacement, one after the other', async () => {
    const { disk, order, generate } = harness();
    disk.set('demo', 'v1');
    await generate('demo', 'v1');
    disk.set('demo', 'v2');
    await Promise.all([generate('demo', 'v2'), generate('demo', 'v2')]);
    expect(order).toEqual(['load demo@v1', 'dispose demo@v1', 'load demo@v2']);
  });

  it('keeps a model whose file was removed until its generation ends, then disposes it once', async () => {
    const { slots, disk, disposals, events, generate } = harness();
    disk.set('demo', 'v1');
    const run = deferred();
    const running = generate('demo', 'v1', run.promise);
    await settle();

    disk.delete('demo');
    await Promise.all([slots.refresh('demo'), slots.refresh('demo')]);
    expect(disposals).toEqual([]);
    await expect(slots.acquire('demo', 'v1')).rejects.toThrow('demo is gone');

    run.resolve();
    expect((await running).version).toBe('v1');
    await settle();
    expect(disposals.map((model) => model.version)).toEqual(['v1']);
    expect(events.filter((event) => event.type === 'unloaded')).toEqual([
      { type: 'unloaded', id: 'demo', version: 'v1', reason: 'removed' },
    ]);
    expect(slots.loadedCount).toBe(0);
    expect(slots.views()).toEqual([]);
  });

  it('keeps a model whose file is unchanged when the directory is checked', async () => {
    const { slots, disk, disposals, generate } = harness();
    disk.set('demo', 'v1');
    const model = await generate('demo', 'v1');
    await slots.refresh('demo');
    expect(disposals).toEqual([]);
    expect(await generate('demo', 'v1')).toBe(model);
  });

  it('unloads an idle model whose file changed when the directory is checked, before any request asks for it', async () => {
    const { slots, disk, disposals, events, generate } = harness();
    disk.set('demo', 'v1');
    await generate('demo', 'v1');
    disk.set('demo', 'v2');
    await slots.refresh('demo');
    expect(disposals.map((model) => model.version)).toEqual(['v1']);
    expect(events.at(-1)).toEqual({ type: 'unloaded', id: 'demo', version: 'v1', reason: 'replaced' });
    expect(slots.loadedCount).toBe(0);
  });

  it('unloads a model after the idle time, but never one that is generating', async () => {
    const { slots, disk, disposals, events, advance, generate } = harness();
    disk.set('demo', 'v1');
    const run = deferred();
    const running = generate('demo', 'v1', run.promise);
    await settle();
    advance(10_000);
    await slots.unloadIdle(5_000);
    expect(disposals).toEqual([]);

    run.resolve();
    await running;
    advance(4_999);
    await slots.unloadIdle(5_000);
    expect(disposals).toEqual([]);
    advance(1);
    await slots.unloadIdle(5_000);
    expect(disposals.map((model) => model.version)).toEqual(['v1']);
    expect(events.at(-1)).toEqual({ type: 'unloaded', id: 'demo', version: 'v1', reason: 'idle' });
    expect(slots.loadedCount).toBe(0);
  });

  it('leaves a model loaded when a request takes it in the same tick as the idle sweep', async () => {
    const { slots, disk, disposals, loads, advance, generate } = harness();
    disk.set('demo', 'v1');
    await generate('demo', 'v1');
    advance(10_000);
    const sweep = slots.unloadIdle(5_000);
    const run = deferred();
    const running = generate('demo', 'v1', run.promise);
    await sweep;
    run.resolve();
    const model = await running;
    await settle();
    expect(disposals).toEqual([]);
    expect(await generate('demo', 'v1')).toBe(model);
    expect(loads).toHaveLength(1);
  });

  it('keeps a load failure for its file version, and loads the file again once it is replaced', async () => {
    const { slots, disk, broken, loads, generate } = harness();
    disk.set('demo', 'v1');
    broken.add('v1');
    await expect(generate('demo', 'v1')).rejects.toThrow('cannot load demo@v1');
    await expect(generate('demo', 'v1')).rejects.toThrow('cannot load demo@v1');
    expect(loads).toHaveLength(1);
    expect(String(slots.failure('demo', 'v1'))).toContain('cannot load demo@v1');
    expect(slots.views()).toEqual([{ id: 'demo', version: 'v1', state: 'failed', leases: 0 }]);
    expect(slots.loadedCount).toBe(0);

    disk.set('demo', 'v2');
    expect((await generate('demo', 'v2')).version).toBe('v2');
    expect(slots.failure('demo', 'v1')).toBeUndefined();
    expect(slots.failure('demo', 'v2')).toBeUndefined();
    expect(loads.map((load) => load.version)).toEqual(['v1', 'v2']);
  });

  it('closes only after the generations still running, disposing every model, and refuses requests afterwards', async () => {
    const { slots, disk, disposals, events, generate } = harness();
    disk.set('a', 'v1');
    disk.set('b', 'v1');
    const run = deferred();
    const running = generate('a', 'v1', run.promise);
    await generate('b', 'v1');
    let closed = false;
    const closing = slots.close().then(() => {
      closed = true;
    });
    await settle();
    expect(disposals.map((model) => model.id)).toEqual(['b']);
    expect(closed).toBe(false);
    await expect(slots.acquire('b', 'v1')).rejects.toThrow('closed');

    run.resolve();
    await running;
    await closing;
    expect(disposals.map((model) => model.id).sort()).toEqual(['a', 'b']);
    expect(
      events.filter((event) => event.type === 'unloaded').every((event) => event.type === 'unloaded' && event.reason === 'closed'),
    ).toBe(true);
    expect(slots.loadedCount).toBe(0);
  });

  it('never leaks or disposes a busy model under a storm of requests, replacements, removals and idle sweeps', async () => {
    const { slots, disk, loads, disposals, advance, generate } = harness();
    // A seeded generator: the same interleaving on every run.
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const ids = ['a', 'b'] as const;
    let nextVersion = 1;
    for (const id of ids) disk.set(id, `v${nextVersion++}`);
    const work: Array<Promise<unknown>> = [];
    for (let step = 0; step < 400; step += 1) {
      const id = random() < 0.5 ? ids[0] : ids[1];
      const roll = random();
      if (roll < 0.6) {
        const version = disk.get(id);
        if (version !== undefined) {
          const finish = new Promise<void>((resolve) => setTimeout(resolve, Math.floor(random() * 3)));
          work.push(generate(id, version, finish).catch((error: Error) => expect(error.message).toMatch(/is gone/)));
        }
      } else if (roll < 0.75) {
        disk.set(id, `v${nextVersion++}`);
      } else if (roll < 0.82) {
        disk.delete(id);
      } else if (roll < 0.9) {
        work.push(slots.refresh(id));
      } else {
        advance(100);
        work.push(slots.unloadIdle(50));
      }
      if (random() < 0.3) await settle();
    }
    await Promise.all(work);
    await settle();
    // Every model loaded is either in memory (and in a slot) or was disposed exactly once.
    expect(new Set(disposals).size).toBe(disposals.length);
    expect(loads.length - disposals.length).toBe(slots.loadedCount);
    expect(slots.views().every((view) => view.state !== 'retiring' && view.leases === 0)).toBe(true);
    expect(slots.loadedCount).toBeLessThanOrEqual(ids.length);
    await slots.close();
    expect(loads.length).toBe(disposals.length);
    expect(loads.length).toBeGreaterThan(10);
  });
});
