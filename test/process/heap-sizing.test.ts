/**
 * The young generation keeps its initial size through start-up (src/heap-sizing.ts), so an idle
 * server does not hold the ~30 MiB start-up would grow it to, and grows under sustained load, so
 * throughput does not pay for it. A probe preloaded with --require answers
 * SIGUSR2 with the young generation's size, read by V8 (v8.getHeapSpaceStatistics).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeUpstream } from '../support/fake-openai-upstream';
import { poll } from '../support/polling';
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

describe('the young generation', () => {
  it('keeps its initial size through start-up, and grows under load', async () => {
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
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < 2000) {
          next += 1;
          const response = await fetch(`${url}/api/v1/generate`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ prompt, model_id: 'gpt-4o-mini', max_tokens: 8 }),
          });
          expect(response.status).toBe(200);
          await response.arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: 10 }, worker));
      // Measured: 2 MiB at start, 32 MiB (its largest) after this load.
      expect(await youngGenerationBytes(server)).toBeGreaterThan(4 * MIB);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      await fake.close();
    }
  }, 60_000);
});
