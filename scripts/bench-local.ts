import { access, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { createLocalProvider } from '../src/providers/local/local-provider';
import type { GenerationRequest, GenerationResult, ProviderError } from '../src/providers/provider';
import { demoModelPresets, writeDemoModel } from './gguf/demo-model';

/**
 * npm run bench:local — 10 prompts of 64 tokens on a generated ~26M-parameter model through the
 * local provider: one after another, then as one batch that decodes together in shared batches.
 */
const promptCount = 10;
const maxTokens = 64;
const prompts = [
  'The weather today is',
  'GraphQL schemas describe',
  'Language models are trained on',
  'A fine-tuned model answers',
  'Serving many requests at once',
  'Tokens are counted by',
  'Rain is expected in the',
  'The gateway routes each prompt',
  'Costs are computed from',
  'Batching helps because',
].slice(0, promptCount);

async function ensureBenchModel(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true });
  const file = path.join(directory, 'llmop-demo-bench.gguf');
  try {
    await access(file);
  } catch {
    process.stdout.write('generating the bench model (about 26M parameters)... ');
    const { parameters, bytes } = await writeDemoModel(file, demoModelPresets.bench);
    process.stdout.write(`${(parameters / 1e6).toFixed(1)}M parameters, ${(bytes / 2 ** 20).toFixed(0)} MiB\n`);
  }
}

const tokensOf = (results: ReadonlyArray<GenerationResult | ProviderError>): number =>
  results.reduce((sum, result) => sum + ('usage' in result && result.usage ? result.usage.outputTokens : 0), 0);

async function main(): Promise<void> {
  const config = loadConfig();
  const directory = path.resolve('.cache', 'bench-models');
  await ensureBenchModel(directory);
  const provider = createLocalProvider({ ...config.local, modelsDir: directory, sequences: promptCount, preload: [], idleUnloadMs: 0 });
  const model = (await provider.listModels()).find((candidate) => candidate.id === 'llmop-demo-bench');
  if (!model) throw new Error('bench model not found');
  const requests: GenerationRequest[] = prompts.map((prompt) => ({ model, prompt, maxTokens, temperature: 0, topP: 1 }));

  await provider.generate({ ...requests[0]!, maxTokens: 4 }); // load the model and warm the caches

  let startedAt = performance.now();
  const sequential: GenerationResult[] = [];
  for (const request of requests) sequential.push(await provider.generate(request));
  const sequentialMs = performance.now() - startedAt;

  startedAt = performance.now();
  const batched = await provider.generateBatch(requests);
  const batchedMs = performance.now() - startedAt;
  await provider.close();

  const failures = batched.filter((result) => !('usage' in result));
  if (failures.length > 0) throw new Error(`${failures.length} batched prompts failed`);
  const sequentialTokens = tokensOf(sequential);
  const batchedTokens = tokensOf(batched);
  console.log(`machine:          ${os.availableParallelism()} cores, ${config.local.threads} inference threads`);
  console.log(`workload:         ${promptCount} prompts x ${maxTokens} tokens, greedy`);
  console.log(`sequential:       ${sequentialMs.toFixed(0)} ms, ${((sequentialTokens / sequentialMs) * 1000).toFixed(1)} tokens/s`);
  console.log(`batched:          ${batchedMs.toFixed(0)} ms, ${((batchedTokens / batchedMs) * 1000).toFixed(1)} tokens/s`);
  console.log(`speed-up:         ${(sequentialMs / batchedMs).toFixed(2)}x (target: at least 2x)`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
