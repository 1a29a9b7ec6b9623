import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CriticalityLevel, diff } from '@graphql-inspector/core';
import { buildSchema } from 'graphql';

/**
 * npm run schema:check [-- <git ref>] — compares schema/schema.graphql with the committed one at a ref
 * (default HEAD) and fails on breaking changes, so a client of the supergraph is never broken by accident.
 */
const schemaPath = 'schema/schema.graphql';

// The federation directives are defined by the supergraph, not in our SDL: skip SDL validation.
const load = (sdl: string) => buildSchema(sdl, { assumeValidSDL: true });

async function main(): Promise<void> {
  const ref = process.argv[2] ?? 'HEAD';
  const before = execFileSync('git', ['show', `${ref}:${schemaPath}`], { encoding: 'utf8' });
  const after = readFileSync(schemaPath, 'utf8');
  const changes = await diff(load(before), load(after));
  for (const change of changes) console.log(`${change.criticality.level.padEnd(13)} ${change.message}`);
  const breaking = changes.filter((change) => change.criticality.level === CriticalityLevel.Breaking);
  console.log(`${changes.length} change(s) against ${ref}, ${breaking.length} breaking`);
  if (breaking.length > 0) process.exit(1);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(2);
});
