import { access, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { demoModelPresets, writeDemoModel, type DemoModelOptions, type DemoModelPreset } from './gguf/demo-model';

/**
 * Writes a generated llama-architecture GGUF fixture (and its model card) for local inference
 * without downloads:
 *   node dist/scripts/create-demo-model.js [--preset tiny|bench] [--chat-template chatml] [--out <file>] [--if-missing]
 * Default output: <MODELS_DIR or ./models>/llmop-demo-<preset>[-chatml].gguf, card alongside as .json.
 */

const usage = 'usage: create-demo-model [--preset tiny|bench] [--chat-template chatml] [--out <file>] [--if-missing]';

/** Fixed so that the card, like the model, is the same on every run. */
const CARD_CREATED_AT = '2024-06-01T00:00:00.000Z';

interface CliOptions {
  preset: DemoModelPreset;
  chatTemplate: 'chatml' | undefined;
  out: string | undefined;
  ifMissing: boolean;
}

function parseArguments(argv: readonly string[]): CliOptions {
  const options: CliOptions = { preset: 'tiny', chatTemplate: undefined, out: undefined, ifMissing: false };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index]!;
    const [flag, inline] = argument.startsWith('--') && argument.includes('=') ? argument.split(/=(.*)/s, 2) : [argument];
    const value = (): string => {
      const next = inline ?? argv[++index];
      if (next === undefined || next === '') throw new Error(`${flag} needs a value\n${usage}`);
      return next;
    };
    switch (flag) {
      case '--preset': {
        const preset = value();
        if (preset !== 'tiny' && preset !== 'bench') throw new Error(`unknown preset ${preset}\n${usage}`);
        options.preset = preset;
        break;
      }
      case '--chat-template': {
        const template = value();
        if (template !== 'chatml') throw new Error(`unknown chat template ${template}\n${usage}`);
        options.chatTemplate = template;
        break;
      }
      case '--out':
        options.out = value();
        break;
      case '--if-missing':
        options.ifMissing = true;
        break;
      case '--help':
      case '-h':
        console.log(usage);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${argument}\n${usage}`);
    }
  }
  return options;
}

async function exists(filePath: string): Promise<boolean> {
  try {
    await access(filePath);
    return true;
  } catch {
    return false;
  }
}

function modelCard(preset: DemoModelPreset, model: DemoModelOptions): Record<string, unknown> {
  return {
    name: `LLMOP demo (${preset} generated fixture)`,
    description: 'A tiny generated llama-architecture model with random weights: a test fixture, not a useful language model.',
    base_model: 'none (generated)',
    context_length: model.contextLength,
    capabilities: model.chatTemplate ? ['text-generation', 'chat'] : ['text-generation'],
    fine_tuning: {
      dataset: 'none: weights are generated',
      created_at: CARD_CREATED_AT,
      evaluation: {},
    },
  };
}

async function main(): Promise<void> {
  const cli = parseArguments(process.argv.slice(2));
  const base = demoModelPresets[cli.preset];
  const model: DemoModelOptions = {
    ...base,
    chatTemplate: cli.chatTemplate,
    name: cli.chatTemplate ? `${base.name}-${cli.chatTemplate}` : base.name,
  };
  const modelsDir = process.env.MODELS_DIR || path.resolve('models');
  const filePath = path.resolve(cli.out ?? path.join(modelsDir, `${model.name}.gguf`));
  const cardPath = `${filePath.replace(/\.gguf$/i, '')}.json`;

  if (cli.ifMissing && (await exists(filePath))) {
    const { size } = await stat(filePath);
    console.log(`${filePath} exists (${size} bytes); left as is`);
    return;
  }

  await mkdir(path.dirname(filePath), { recursive: true });
  // Write beside the target and rename, so a reader never sees a half-written model.
  const temporary = `${filePath}.${process.pid}.tmp`;
  try {
    const started = Date.now();
    const { parameters, bytes } = await writeDemoModel(temporary, model);
    await rename(temporary, filePath);
    await writeFile(cardPath, `${JSON.stringify(modelCard(cli.preset, model), null, 2)}\n`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`${filePath}: ${parameters.toLocaleString('en-US')} parameters, ${bytes.toLocaleString('en-US')} bytes (${seconds} s)`);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
