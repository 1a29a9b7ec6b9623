import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { createLogger } from '../src/logger';
import { defaultContractPath, emittedJsonPath } from '../src/rest/openapi-contract';
import { buildGatewaySchemas, printSubgraphSdl } from '../src/schema';

/** The JSON form of the served OpenAPI document, as `npm run schema:emit` writes it. */
export async function openApiJson(yamlPath: string): Promise<string> {
  return `${JSON.stringify(YAML.parse(await readFile(yamlPath, 'utf8')), null, 2)}\n`;
}

/**
 * npm run schema:emit — writes schema/schema.graphql from the type-graphql classes (or to the path given),
 * and schema/openapi.json from schema/openapi.yaml.
 */
async function main(): Promise<void> {
  const target = path.resolve(process.argv[2] ?? 'schema/schema.graphql');
  const { plain } = await buildGatewaySchemas(createLogger('silent'));
  await writeFile(target, `# Emitted from the type-graphql classes by \`npm run schema:emit\`; do not edit.\n${printSubgraphSdl(plain)}`);
  console.log(`wrote ${path.relative(process.cwd(), target)}`);
  const jsonTarget = emittedJsonPath(defaultContractPath);
  await writeFile(jsonTarget, await openApiJson(defaultContractPath));
  console.log(`wrote ${path.relative(process.cwd(), jsonTarget)}`);
}

// Only as `npm run schema:emit`: the stale-artefact test imports openApiJson from here.
if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
