/**
 * The REST contract (`schema/openapi.yaml`) as a test oracle: every REST response a test sees is checked
 * against the operation's documented response for its status, through ajv with the whole document
 * registered under one id so `$ref`s resolve inside it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

export const contractPath = path.resolve(__dirname, '..', '..', 'schema', 'openapi.yaml');

interface ResponseObject {
  $ref?: string;
  description?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema?: unknown }>;
}

export interface ContractDocument {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>;
  components: { schemas: Record<string, any>; responses: Record<string, ResponseObject> };
  [key: string]: unknown;
}

/** The parsed contract; tests must not mutate it. */
export const contractDocument = YAML.parse(readFileSync(contractPath, 'utf8')) as ContractDocument;

const documentId = 'llmop-openapi-contract';
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(contractDocument, documentId);

const validators = new Map<string, ValidateFunction>();

function validatorFor(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `${documentId}${pointer}` });
    validators.set(pointer, validate);
  }
  return validate;
}

const escapePointer = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1');

const describeErrors = (errors: ErrorObject[] | null | undefined): string =>
  (errors ?? [])
    .map((error) => `  ${error.instancePath || '(body)'} ${error.message ?? error.keyword} ${JSON.stringify(error.params)}`)
    .join('\n');

const show = (body: unknown): string => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
};

export interface RestResponse<TBody = any> {
  status: number;
  headers: Headers;
  body: TBody;
}

function expectJsonContentType(response: { headers: Headers }, where: string): void {
  const contentType = response.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(contentType)) {
    throw new Error(`${where}: Content-Type is "${contentType}", expected application/json`);
  }
}

/** Validates `body` against the schema at a JSON pointer into the contract (e.g. `#/components/schemas/ErrorResponse`). */
export function expectToMatchSchemaAt(body: unknown, pointer: string, where = pointer): void {
  const validate = validatorFor(pointer);
  if (!validate(body)) {
    throw new Error(`${where}: body does not match the contract:\n${describeErrors(validate.errors)}\nbody: ${show(body)}`);
  }
}

/** A JSON response validated directly against a component schema, for answers no operation documents (404 on an unknown path). */
export function expectToMatchComponentSchema(response: RestResponse<unknown>, schemaName: string): void {
  const where = `${response.status} as ${schemaName}`;
  if (!(schemaName in contractDocument.components.schemas)) throw new Error(`${where}: no such component schema`);
  expectJsonContentType(response, where);
  expectToMatchSchemaAt(response.body, `#/components/schemas/${escapePointer(schemaName)}`, where);
}

/**
 * Fails unless the contract documents `response.status` for `method path`, the answer is JSON, and the
 * body matches the documented `application/json` schema.
 */
export function expectToMatchContract(response: RestResponse<unknown>, path: string, method: 'get' | 'post'): void {
  const where = `${method.toUpperCase()} ${path} → ${response.status}`;
  const operation = contractDocument.paths[path]?.[method];
  if (!operation) throw new Error(`${where}: the contract has no operation ${method.toUpperCase()} ${path}`);
  const status = String(response.status);
  let documented = operation.responses[status];
  if (!documented) {
    throw new Error(
      `${where}: status ${status} is not documented for this operation (documented: ${Object.keys(operation.responses).join(', ')})\nbody: ${show(response.body)}`,
    );
  }
  let pointer = `#/paths/${escapePointer(path)}/${method}/responses/${status}`;
  if (documented.$ref !== undefined) {
    const match = /^#\/components\/responses\/([^/]+)$/.exec(documented.$ref);
    const target = match ? contractDocument.components.responses[match[1]!] : undefined;
    if (!match || !target) throw new Error(`${where}: unresolvable response $ref ${documented.$ref}`);
    pointer = documented.$ref;
    documented = target;
  }
  if (!documented.content?.['application/json']?.schema) {
    throw new Error(`${where}: the contract documents no application/json body for this response`);
  }
  expectJsonContentType(response, where);
  expectToMatchSchemaAt(response.body, `${pointer}/content/application~1json/schema`, where);
}

export const restBase = '/api/v1';

/**
 * One real HTTP request to the gateway's REST API. `path` is below /api/v1 (e.g. `/models`) unless it
 * starts with `/api/`. A string body is sent verbatim; anything else is sent as JSON. The body read back
 * is parsed JSON, or the raw text when it is not JSON.
 */
export async function rest<TBody = any>(
  gateway: { url: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RestResponse<TBody>> {
  const target = `${gateway.url}${path.startsWith('/api/') ? '' : restBase}${path}`;
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'content-type': 'application/json', ...headers };
  }
  const response = await fetch(target, init);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the raw text
  }
  return { status: response.status, headers: response.headers, body: parsed as TBody };
}
