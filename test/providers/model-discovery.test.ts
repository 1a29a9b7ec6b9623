/**
 * ModelDiscovery's list while its upstream is down: the last known and configured models, marked with why
 * they cannot serve. The same list object while nothing changed (providers index it once per list), a new
 * one as soon as the reason or the models do.
 */
import { ModelDiscovery } from '../../src/providers/model-discovery';
import type { ModelDescriptor } from '../../src/providers/provider';

const model = (id: string): ModelDescriptor => ({ id, upstreamModel: id }) as unknown as ModelDescriptor;

describe('ModelDiscovery while the upstream is down', () => {
  it('keeps one list for one reason and makes a new one when the reason changes', async () => {
    let outcome: () => Promise<ModelDescriptor[]> = async () => [model('a'), model('b')];
    let failures = 0;
    const discovery = new ModelDiscovery({
      discover: () => outcome(),
      configuredModels: [model('a'), model('c')],
      intervalMs: 60_000,
      timeoutMs: 1_000,
      describeFailure: (error) => String((error as Error).message),
    });
    await discovery.refresh();
    expect((await discovery.listModels()).map((m) => m.id)).toEqual(['a', 'b']);

    outcome = async () => {
      failures += 1;
      throw new Error(failures === 1 ? 'connection refused' : 'certificate expired');
    };
    await discovery.refresh();
    const first = await discovery.listModels();
    expect(first.map((m) => [m.id, m.unavailableReason])).toEqual([
      ['a', 'connection refused'],
      ['c', 'connection refused'],
      ['b', 'connection refused'],
    ]);
    expect(await discovery.listModels()).toBe(first);

    await discovery.refresh();
    const second = await discovery.listModels();
    expect(second).not.toBe(first);
    expect(second.every((m) => m.unavailableReason === 'certificate expired')).toBe(true);
    discovery.stop();
  });
});
