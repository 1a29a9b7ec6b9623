import { readFileSync } from 'node:fs';
import path from 'node:path';
import { validate } from '@readme/openapi-parser';
import YAML from 'yaml';
import { contractDocument, contractPath, rest } from '../support/contract';
import { startGateway, type RunningGateway } from '../support/start-gateway';

/** The user's specification, beside the repository (/work/shared/spec). */
const userSpecPath = path.resolve(__dirname, '..', '..', '..', 'shared', 'spec', 'api_specification.yaml');
const userSpec = YAML.parse(readFileSync(userSpecPath, 'utf8')) as any;

const httpMethods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
/** Keywords whose value a client relies on: ours must keep the spec's value exactly. */
const keptKeywords = [
  'type',
  'format',
  'nullable',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'default',
] as const;

function resolveRef(document: any, schema: any): any {
  let current = schema;
  for (let hops = 0; current && typeof current.$ref === 'string' && hops < 20; hops++) {
    current = current.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((node: any, segment: string) => node?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')], document);
  }
  return current;
}

/** Properties of a schema, those it inherits through allOf included. */
function propertiesOf(document: any, schema: any): Record<string, any> {
  const inherited = (schema.allOf ?? []).map((part: any) => propertiesOf(document, resolveRef(document, part)));
  return Object.assign({}, ...inherited, schema.properties ?? {});
}

function requiredOf(document: any, schema: any): string[] {
  const inherited = (schema.allOf ?? []).flatMap((part: any) => requiredOf(document, resolveRef(document, part)));
  return [...inherited, ...(schema.required ?? [])];
}

/**
 * Lists how `ours` fails to extend `spec`: every property the spec declares is still there with the same
 * type and bounds, every required property is still required, and enums are unchanged.
 */
function extensionProblems(specSchema: any, ourSchema: any, where: string, problems: string[] = []): string[] {
  const spec = resolveRef(userSpec, specSchema);
  const ours = resolveRef(contractDocument, ourSchema);
  if (spec === undefined) return problems;
  if (ours === undefined) {
    problems.push(`${where}: missing`);
    return problems;
  }
  for (const keyword of keptKeywords) {
    if (spec[keyword] !== undefined && spec[keyword] !== ours[keyword]) {
      problems.push(`${where}: ${keyword} is ${JSON.stringify(ours[keyword])}, the spec says ${JSON.stringify(spec[keyword])}`);
    }
  }
  if (spec.enum !== undefined && JSON.stringify([...(ours.enum ?? [])].sort()) !== JSON.stringify([...spec.enum].sort())) {
    problems.push(`${where}: enum is ${JSON.stringify(ours.enum)}, the spec says ${JSON.stringify(spec.enum)}`);
  }
  const ourRequired = requiredOf(contractDocument, ours);
  for (const name of spec.required ?? []) {
    if (!ourRequired.includes(name)) problems.push(`${where}.${name}: required in the spec, optional in ours`);
  }
  const ourProperties = propertiesOf(contractDocument, ours);
  for (const [name, child] of Object.entries<any>(spec.properties ?? {})) {
    if (!(name in ourProperties)) problems.push(`${where}.${name}: missing`);
    else extensionProblems(child, ourProperties[name], `${where}.${name}`, problems);
  }
  if (spec.items !== undefined) extensionProblems(spec.items, ours.items, `${where}[]`, problems);
  return problems;
}

describe('the REST contract document schema/openapi.yaml', () => {
  it('is a valid OpenAPI 3.0 document', async () => {
    const result = await validate(contractPath);
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(result.valid).toBe(true);
    expect(contractDocument.openapi).toMatch(/^3\.0\.\d+$/);
  });

  it('keeps every path and method of the user specification', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries<any>(userSpec.paths)) {
      for (const method of httpMethods) {
        if (item[method] !== undefined && contractDocument.paths[path]?.[method] === undefined)
          missing.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('keeps every documented response and request body of the user specification, with the same schemas', () => {
    const problems: string[] = [];
    for (const [path, item] of Object.entries<any>(userSpec.paths)) {
      for (const method of httpMethods) {
        const specOperation = item[method];
        const ourOperation: any = contractDocument.paths[path]?.[method];
        if (specOperation === undefined || ourOperation === undefined) continue;
        const where = `${method.toUpperCase()} ${path}`;
        const specBody = specOperation.requestBody?.content?.['application/json']?.schema;
        if (specBody !== undefined) {
          extensionProblems(specBody, ourOperation.requestBody?.content?.['application/json']?.schema, `${where} request`, problems);
        }
        for (const [status, specResponse] of Object.entries<any>(specOperation.responses ?? {})) {
          const ourResponse = resolveRef(contractDocument, ourOperation.responses?.[status]);
          if (ourResponse === undefined) {
            problems.push(`${where} ${status}: not documented`);
            continue;
          }
          const specSchema = resolveRef(userSpec, specResponse).content?.['application/json']?.schema;
          if (specSchema !== undefined) {
            extensionProblems(specSchema, ourResponse.content?.['application/json']?.schema, `${where} ${status}`, problems);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('keeps every component schema of the user specification, only extending it', () => {
    const problems: string[] = [];
    for (const [name, schema] of Object.entries<any>(userSpec.components.schemas)) {
      if (!(name in contractDocument.components.schemas)) {
        problems.push(`${name}: missing`);
        continue;
      }
      extensionProblems(schema, contractDocument.components.schemas[name], name, problems);
    }
    expect(problems).toEqual([]);
  });
});

describe('the REST contract served by the gateway', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway.close());

  it('serves GET /api/v1/openapi.json as the same document, as JSON', async () => {
    const response = await rest(gateway, 'GET', '/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json\b/);
    expect(response.body).toEqual(contractDocument);
  });

  it('serves GET /api/v1/openapi.yaml as the same document, as YAML', async () => {
    const response = await rest<string>(gateway, 'GET', '/openapi.yaml');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/(yaml|x-yaml)\b|^text\/yaml\b/);
    expect(typeof response.body).toBe('string');
    expect(YAML.parse(response.body)).toEqual(contractDocument);
  });
});
