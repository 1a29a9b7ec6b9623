/**
 * The young generation keeps its initial size through start-up (src/heap-sizing.ts), so an idle
 * server does not hold the ~30 MiB start-up would grow it to, and grows under sustained load, so
 * throughput does not pay for it. A probe preloaded with --require answers
 * SIGUSR2 with the young generation's size, read by V8 (v8.getHeapSpaceStatistics).
 *
 * The old generation grows to twice what survived the last full collection before the next one,
 * read from V8's own --trace-gc-verbose lines while a second probe promotes garbage at full speed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeUpstream } from '../support/fake-openai-upstream';
import { poll } from '../support/polling';
import { runBounded } from '../support/run-bounded';
import { type SpawnedServer, spawnServer } from '../support/spawn-server';

const MIB = 1024 * 1024;

const probe = path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-heap-probe-')), 'probe.js');
writeFileSync(
  probe,
  `process.on('SIGUSR2', () => {
    const young = require('node:v8').getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    process.stdout.write(JSON.stringify({ youngGenerationBytes: young.space_size }) + '\\n');
  });`,
);

const churnProbe = path.join(path.dirname(probe), 'churn.js');
// On SIGUSR2, two seconds of arrays that each live through 2,000 more: every one is promoted, then dropped.
writeFileSync(
  churnProbe,
  `process.on('SIGUSR2', () => {
    const ring = new Array(2000);
    let made = 0;
    const end = Date.now() + 2000;
    while (Date.now() < end) ring[made++ % ring.length] = new Array(1000).fill(made);
    process.stdout.write('churn done\\n');
  });`,
);

/**
 * The factors V8 grew the old generation's limit by after each full collection while the probe
 * churned, from its own --trace-gc-verbose lines ("[HeapController] Limit: old size: ... (2.0)").
 */
async function oldGenerationGrowthFactors(nodeArguments: readonly string[]): Promise<number[]> {
  const server = spawnServer({ ACCESS_LOG: 'off', MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')) }, [
    '--trace-gc-verbose',
    '--require',
    churnProbe,
    ...nodeArguments,
  ]);
  try {
    await server.listening;
    server.child.kill('SIGUSR2');
    const output = await poll(
      async () => server.output(),
      (text) => text.includes('churn done'),
      20_000,
    );
    const factors = [...output.matchAll(/\[HeapController\] Limit: old size: \d+ KB, new limit: \d+ KB \(([\d.]+)\)/g)].map((match) =>
      Number(match[1]),
    );
    if (factors.length === 0) throw new Error(`no full collection reported its new limit:\n${output.slice(-3000)}`);
    return factors;
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

/** The young generation's size now, as the probe reports it. */
async function youngGenerationBytes(server: SpawnedServer): Promise<number> {
  const reportsBefore = server.output().match(/"youngGenerationBytes":\d+/g)?.length ?? 0;
  server.child.kill('SIGUSR2');
  const output = await poll(
    async () => server.output(),
    (text) => (text.match(/"youngGenerationBytes":\d+/g)?.length ?? 0) > reportsBefore,
    5000,
  );
  const reports = output.match(/"youngGenerationBytes":(\d+)/g) ?? [];
  if (reports.length <= reportsBefore) throw new Error(`the probe did not answer:\n${output}`);
  return Number(reports[reports.length - 1]!.split(':')[1]);
}

describe('heap sizing', () => {
  it('keeps the young generation at its initial size through start-up, and grows it under load', async () => {
    const fake = await startFakeUpstream();
    const server = spawnServer({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, ACCESS_LOG: 'off', RATE_LIMIT_GENERATE: '100000' }, [
      '--require',
      probe,
    ]);
    try {
      const url = await server.listening;
      // V8 starts it at 1 MiB a half on 64-bit machines; start-up left alone grows it to 16 MiB a half.
      const atStart = await youngGenerationBytes(server);
      expect(atStart).toBeLessThanOrEqual(2 * MIB);

      // Load: 2,000 generations, 10 at a time, with prompts big enough to keep the collector busy.
      const prompt = 'grow '.repeat(2000);
      await runBounded(2000, 10, async () => {
        const response = await fetch(`${url}/api/v1/generate`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt, model_id: 'gpt-4o-mini', max_tokens: 8 }),
        });
        expect(response.status).toBe(200);
        await response.arrayBuffer();
      });
      // Measured: 2 MiB at start, 32 MiB (its largest) after this load.
      expect(await youngGenerationBytes(server)).toBeGreaterThan(4 * MIB);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      await fake.close();
    }
  }, 60_000);

  it('lets the old generation grow to twice what the last full collection kept', async () => {
    // V8 picks a factor of up to 4 by itself (4.0 here without the setting).
    expect(new Set(await oldGenerationGrowthFactors([]))).toEqual(new Set([2]));
  }, 60_000);

  it("leaves an operator's own --heap-growing-percent alone", async () => {
    expect(new Set(await oldGenerationGrowthFactors(['--heap-growing-percent=300']))).toEqual(new Set([4]));
  }, 60_000);
});
