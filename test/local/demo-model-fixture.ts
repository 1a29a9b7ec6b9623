import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DemoModelOptions } from '../../scripts/gguf/demo-model';
import { builtMain } from '../support/spawn-server';

/**
 * Writes a demo model with the built writer in a child process: inside jest's sandbox the bench
 * preset takes 25 s to a minute, against 2 s in plain Node. Needs `npm run build`, as the server does.
 */
export async function writeDemoModelFixture(file: string, options: DemoModelOptions): Promise<void> {
  const writer = path.resolve(path.dirname(builtMain), '../scripts/gguf/demo-model.js');
  const script = `require(${JSON.stringify(writer)}).writeDemoModel(${JSON.stringify(file)}, ${JSON.stringify(options)}).catch((error) => { console.error(error); process.exit(1); })`;
  await promisify(execFile)(process.execPath, ['-e', script]);
}
