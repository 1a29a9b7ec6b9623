import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { openApiJson } from '../../scripts/emit-schema';
import { createLogger } from '../../src/logger';
import { defaultContractPath, emittedJsonPath } from '../../src/rest/openapi-contract';
import { buildGatewaySchemas, printSubgraphSdl } from '../../src/schema';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const generatedFile = 'test/generated/graphql.ts';

describe('generated artefacts', () => {
  it('schema/schema.graphql is what the code emits (run npm run schema:emit when this fails)', async () => {
    const { plain } = await buildGatewaySchemas(createLogger('silent'));
    const committed = await readFile(path.join(root, 'schema/schema.graphql'), 'utf8');
    const withoutHeader = committed
      .split('\n')
      .filter((line, index) => !(index === 0 && line.startsWith('#')))
      .join('\n');
    expect(withoutHeader).toBe(printSubgraphSdl(plain));
  });

  it('schema/openapi.json is schema/openapi.yaml as JSON (run npm run schema:emit when this fails)', async () => {
    const committed = await readFile(emittedJsonPath(defaultContractPath), 'utf8');
    expect(committed).toBe(await openApiJson(defaultContractPath));
  });

  it('test/generated/graphql.ts is what codegen generates from the operations (run npm run codegen when this fails)', async () => {
    // The codegen CLI is ESM inside; run it as its own process, writing to a temporary file.
    const directory = await mkdtemp(path.join(os.tmpdir(), 'llmop-codegen-'));
    try {
      const config = YAML.parse(await readFile(path.join(root, 'codegen.yml'), 'utf8')) as { generates: Record<string, unknown> };
      const target = path.join(directory, 'graphql.ts');
      config.generates = { [target]: config.generates[generatedFile] };
      const configPath = path.join(directory, 'codegen.json');
      await writeFile(configPath, JSON.stringify(config));
      await run(process.execPath, [path.join(root, 'node_modules/@graphql-codegen/cli/cjs/bin.js'), '--config', configPath], { cwd: root });
      const [fresh, committed] = await Promise.all([readFile(target, 'utf8'), readFile(path.join(root, generatedFile), 'utf8')]);
      expect(committed).toBe(fresh);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
