import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../src/logger';
import { buildGatewaySchemas, printSubgraphSdl } from '../src/schema';

/** npm run schema:emit — writes schema/schema.graphql from the type-graphql classes (or to the path given). */
async function main(): Promise<void> {
  const target = path.resolve(process.argv[2] ?? 'schema/schema.graphql');
  const { plain } = await buildGatewaySchemas(createLogger('silent'));
  await writeFile(target, `# Emitted from the type-graphql classes by \`npm run schema:emit\`; do not edit.\n${printSubgraphSdl(plain)}`);
  console.log(`wrote ${path.relative(process.cwd(), target)}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
