import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { builtMain } from '../support/spawn-server';

const run = promisify(execFile);
const script = path.join(path.dirname(builtMain), '../scripts/create-demo-model.js');

describe('the demo model script that npm start runs', () => {
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'llmop-demo-'));
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));

  it('writes the demo model and its model card into MODELS_DIR, and leaves them alone when present', async () => {
    const env = { ...process.env, MODELS_DIR: directory };
    const first = await run(process.execPath, [script, '--if-missing'], { env });
    expect(first.stdout).toContain('llmop-demo-tiny.gguf');
    const model = path.join(directory, 'llmop-demo-tiny.gguf');
    const written = await stat(model);
    const card = JSON.parse(await readFile(path.join(directory, 'llmop-demo-tiny.json'), 'utf8'));
    expect(card.description).toContain('not a useful language model');

    await run(process.execPath, [script, '--if-missing'], { env });
    expect((await stat(model)).mtimeMs).toBe(written.mtimeMs);
  });

  it('writes the same bytes every time', async () => {
    const again = path.join(directory, 'again.gguf');
    await run(process.execPath, [script, '--out', again]);
    const [left, right] = await Promise.all([readFile(path.join(directory, 'llmop-demo-tiny.gguf')), readFile(again)]);
    expect(left.equals(right)).toBe(true);
  });
});
