import { startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { builtMain, spawnServer } from '../support/spawn-server';

describe('start-up configuration', () => {
  it.each([
    ['PORT', { PORT: 'not-a-port' }],
    ['PORT', { PORT: '70000' }],
    ['OPENAI_BASE_URL', { OPENAI_BASE_URL: 'not a url' }],
    ['UPSTREAM_TIMEOUT_MS', { UPSTREAM_TIMEOUT_MS: '-5' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['MODEL_CATALOG', { MODEL_CATALOG: '/nonexistent/catalog.json' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://somewhere/ledger' }],
    ['LEDGER_CONTENT', { LEDGER_CONTENT: 'maybe' }],
  ])('exits with code 1 and names %s when it is invalid', async (variable, env) => {
    const server = spawnServer(env);
    expect(await server.exited).toBe(1);
    expect(server.output()).toContain(variable);
    expect(server.output()).not.toMatch(/\n\s+at /);
  });

  it('exits with code 1 when the ledger database cannot be reached, saying which, never printing its password', async () => {
    // Port 9 (discard) is closed on the test machines: the connection is refused at once.
    const server = spawnServer({ DATABASE_URL: 'postgres://llmop:pw-never-print-me@127.0.0.1:9/ledger' });
    expect(await server.exited).toBe(1);
    expect(server.output()).toContain('cannot open the ledger database, PostgreSQL (DATABASE_URL)');
    expect(server.output()).not.toContain('pw-never-print-me');
    expect(server.output()).not.toMatch(/\n\s+at /);
  });

  it('also starts from the unbundled build (node dist/src/main.js), without the entry point', async () => {
    const server = spawnServer({}, [], builtMain);
    try {
      const url = await server.listening;
      expect((await fetch(`${url}/api/v1/health`)).status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('never prints the OpenAI key in its logs', async () => {
    const server = spawnServer({ OPENAI_API_KEY: 'sk-never-print-me', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
    await server.listening;
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output()).not.toContain('sk-never-print-me');
  });
});

describe('graceful shutdown', () => {
  let fake: FakeUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream();
  });
  afterAll(() => fake.close());

  it('finishes a request in flight on SIGTERM, refuses new connections, and exits 0', async () => {
    fake.latencyMs = 1000;
    const server = spawnServer({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url });
    const url = await server.listening;
    const inFlight = fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { generate(prompt: "slow answer", model_id: "gpt-4o-mini") { text } }' }),
    });
    await waitFor(() => fake.requests.some((request) => request.path === '/v1/chat/completions'));
    server.child.kill('SIGTERM');
    await waitFor(() => server.output().includes('shutting down'));

    await expect(fetch(`${url}/graphql`, { method: 'POST', body: '{}' })).rejects.toThrow();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { generate: { text: 'echo: slow answer' } } });
    expect(await server.exited).toBe(0);
  });

  it('exits 0 on SIGINT when idle', async () => {
    const server = spawnServer({});
    await server.listening;
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
