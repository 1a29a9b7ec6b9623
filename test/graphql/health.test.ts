import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { HealthDocument, ReadyDocument, StatusDocument, type StatusQuery, type SystemHealth } from '../generated/graphql';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe('health, status and readiness', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway.close());

  it('answers health with healthy, an ISO timestamp and the package version', async () => {
    const { status, body } = await gateway.execute(HealthDocument);
    expect(status).toBe(200);
    expect(body.data!.health).toEqual({ status: 'healthy', timestamp: expect.stringMatching(isoTimestamp), version: '1.0.0' });
  });

  it('tells caches not to store GraphQL answers, successful or refused', async () => {
    const answered = await gateway.execute(HealthDocument);
    const refused = await gateway.graphql('{ nope }');
    expect([answered.status, refused.status]).toEqual([200, 400]);
    expect([answered.headers.get('cache-control'), refused.headers.get('cache-control')]).toEqual(['no-store', 'no-store']);
  });

  it('reports real memory, disk, cpu and runtime figures in status', async () => {
    const { body } = await gateway.execute(StatusDocument);
    const { system, environment } = body.data!.status;
    expect(system.memory.total).toBe(os.totalmem());
    expect(system.memory.used + system.memory.available).toBe(system.memory.total);
    expect(system.memory.percent).toBeGreaterThan(0);
    expect(system.memory.percent).toBeLessThanOrEqual(100);
    const disk = await statfs(process.cwd());
    expect(system.disk.total).toBe(disk.blocks * disk.bsize);
    expect(system.disk.free).toBeGreaterThan(0);
    expect(system.cpu.count).toBe(os.cpus().length);
    expect(system.cpu.percent).toBeGreaterThanOrEqual(0);
    expect(system.cpu.percent).toBeLessThanOrEqual(100);
    expect(environment).toEqual({ node_version: process.version, platform: process.platform, arch: process.arch });
  });

  it('is healthy without an OpenAI key but warns that commercial models are unavailable', async () => {
    const { body } = await gateway.execute(StatusDocument);
    expect(body.data!.status.status).toBe('healthy');
    expect(body.data!.status.warnings).toEqual(expect.arrayContaining([expect.stringContaining('OPENAI_API_KEY is not set')]));
    expect(body.data!.status.providers).toEqual([
      expect.objectContaining({ name: 'openai', kind: 'openai', state: 'unconfigured', ready: true }),
      { name: 'local', kind: 'local', state: 'up', detail: null, model_count: 0, ready: true },
    ]);
  });

  it('is ready with memory and disk checks passing', async () => {
    const { status, body } = await gateway.execute(ReadyDocument);
    expect(status).toBe(200);
    expect(body.data!.ready).toEqual({
      ready: true,
      timestamp: expect.stringMatching(isoTimestamp),
      checks: { memory_available: true, disk_available: true, providers_initialized: true },
    });
  });

  it('answers in the error shape, with a snake_case code, for an unknown field', async () => {
    const { status, body } = await gateway.graphql('{ nope }');
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions).toEqual({ code: 'validation_error' });
  });
});

describe('readiness thresholds', () => {
  it('is not ready, and status is unhealthy, when free memory is below the configured minimum', async () => {
    const gateway = await startGateway({ env: { READY_MIN_MEMORY_MB: String(10 * 1024 * 1024) } });
    try {
      const ready = await gateway.graphql('{ ready { ready checks { memory_available disk_available } } }');
      expect(ready.body.data.ready).toEqual({ ready: false, checks: { memory_available: false, disk_available: true } });
      const status = await gateway.execute(StatusDocument);
      expect(status.body.data!.status.status).toBe('unhealthy');
    } finally {
      await gateway.close();
    }
  });
});

describe('status with a configured provider down', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    fake.modelsBehaviour = { kind: 'status', status: 401 };
    gateway = await startGateway({
      env: { OPENAI_API_KEY: 'sk-test-status', OPENAI_BASE_URL: fake.url, DISCOVERY_INTERVAL_MS: '200' },
    });
  });
  afterAll(async () => {
    await gateway.close();
    await fake.close();
  });

  it('is degraded when the provider rejects the gateway, and names the failure without the key', async () => {
    const status = await waitForStatus(gateway, 'degraded');
    expect(status.status).toBe('degraded');
    expect(status.providers).toEqual([
      expect.objectContaining({ name: 'openai', state: 'down' }),
      expect.objectContaining({ name: 'local', state: 'up' }),
    ]);
    expect(status.warnings).toEqual(expect.arrayContaining([expect.stringContaining('provider openai is down')]));
    expect(JSON.stringify(status)).not.toContain('sk-test-status');
  });

  it('becomes healthy again once the provider answers, without a restart', async () => {
    fake.modelsBehaviour = { kind: 'ok' };
    const status = await waitForStatus(gateway, 'healthy');
    expect(status.status).toBe('healthy');
    expect(status.providers).toEqual([
      expect.objectContaining({ name: 'openai', state: 'up' }),
      expect.objectContaining({ name: 'local', state: 'up' }),
    ]);
  });
});

async function waitForStatus(gateway: RunningGateway, wanted: SystemHealth): Promise<StatusQuery['status']> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { body } = await gateway.execute(StatusDocument);
    if (body.data!.status.status === wanted || Date.now() > deadline) return body.data!.status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
