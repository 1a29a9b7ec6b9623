/**
 * WebAssembly stays on V8's baseline compiler (src/wasm-tiering.ts): undici's HTTP parser, hot on
 * every upstream answer, is never compiled again by TurboFan, whose compilation left ~35 MiB resident
 * in an idle gateway. V8's --trace-wasm-compilation-times names the compiler of every function it
 * compiles; an operator who chooses the tiers keeps their choice.
 */
import { startFakeUpstream } from '../support/fake-openai-upstream';
import { runBounded } from '../support/run-bounded';
import { spawnServer } from '../support/spawn-server';

/** 300 generations, 10 at a time: with a small tiering budget, enough for V8 to tier up llhttp's hot functions when it may. */
async function generateMany(url: string): Promise<void> {
  await runBounded(300, 10, async () => {
    const response = await fetch(`${url}/api/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Say hello.', model_id: 'gpt-4o-mini', max_tokens: 8 }),
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  });
}

/** What V8 compiled the server's WebAssembly with, over a load of upstream calls. */
async function compilersUnderLoad(nodeArguments: readonly string[]): Promise<Set<string>> {
  const fake = await startFakeUpstream();
  const server = spawnServer({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url, ACCESS_LOG: 'off', RATE_LIMIT_GENERATE: '100000' }, [
    '--trace-wasm-compilation-times',
    ...nodeArguments,
  ]);
  try {
    await generateMany(await server.listening);
    // Tier-up compiles in the background: give a last one time to report.
    await new Promise((resolve) => setTimeout(resolve, 500));
    return new Set([...server.output().matchAll(/Compiled function \S+ using (\w+)/g)].map((match) => match[1]!));
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    await fake.close();
  }
}

describe('WebAssembly tiering', () => {
  // This machine is x64 with SSE4.1 or arm64 (CI's and development's are), where the setting applies.
  it('compiles undici’s parser with Liftoff only, however hot it runs', async () => {
    // A tiering budget a thousandth of V8's default tiers a hot function up within a few calls (the second case shows it).
    expect(await compilersUnderLoad(['--wasm-tiering-budget=1800'])).toEqual(new Set(['Liftoff']));
  }, 60_000);

  it('leaves an operator’s own choice alone: with --no-liftoff-only the hot functions tier up to TurboFan', async () => {
    expect(await compilersUnderLoad(['--no-liftoff-only', '--wasm-tiering-budget=1800'])).toEqual(new Set(['Liftoff', 'TurboFan']));
  }, 60_000);
});
