import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

/** A JSON Schema fragment of the OpenAPI document; loose because OpenAPI schemas are open-ended. */
export interface SchemaObject {
  readonly type?: string;
  readonly nullable?: boolean;
  readonly properties?: Record<string, SchemaObject>;
  readonly items?: SchemaObject;
  readonly allOf?: readonly SchemaObject[];
  readonly $ref?: string;
}

interface OperationObject {
  readonly requestBody?: { content: Record<string, { schema: SchemaObject }> };
  readonly responses: Record<string, { content?: Record<string, { schema: SchemaObject }> }>;
}

type OpenApiDocument = {
  readonly paths: Record<string, Record<string, OperationObject>>;
  readonly [key: string]: unknown;
};

const documentId = 'llmop-openapi';

/** schema/openapi.yaml, loaded once: served as JSON and YAML, and used to check REST bodies. */
export class OpenApiContract {
  readonly yaml: string;
  readonly json: string;
  private readonly document: OpenApiDocument;
  private readonly ajv: Ajv;
  private readonly requestValidators = new Map<string, ValidateFunction>();

  constructor(filePath: string) {
    this.yaml = readFileSync(filePath, 'utf8');
    this.document = YAML.parse(this.yaml) as OpenApiDocument;
    this.json = JSON.stringify(this.document);
    this.ajv = new Ajv({ strict: false, allErrors: false });
    addFormats(this.ajv);
    this.ajv.addSchema(this.document, documentId);
  }

  /** Checks a JSON request body against the operation's request schema; returns a field-naming problem or undefined. */
  checkRequestBody(openApiPath: string, method: string, body: unknown): string | undefined {
    const key = `${method} ${openApiPath}`;
    let validate = this.requestValidators.get(key);
    if (!validate) {
      const pointer = `#/paths/${escapePointer(openApiPath)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`;
      validate = this.ajv.compile({ $ref: `${documentId}${pointer}` });
      this.requestValidators.set(key, validate);
    }
    if (validate(body)) return undefined;
    return describeProblem(validate.errors?.[0]);
  }

  /** The success response schema of an operation, for shaping its body. */
  responseSchema(openApiPath: string, method: string, status: string): SchemaObject | undefined {
    return this.document.paths[openApiPath]?.[method.toLowerCase()]?.responses[status]?.content?.['application/json']?.schema;
  }

  resolve(schema: SchemaObject): SchemaObject {
    if (!schema.$ref) return schema;
    const found = schema.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((node, segment) => (node as Record<string, unknown> | undefined)?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')], this.document);
    return this.resolve((found ?? {}) as SchemaObject);
  }
}

export const defaultContractPath = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../../schema/openapi.yaml' : '../../schema/openapi.yaml');

const escapePointer = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1');

function describeProblem(error: ErrorObject | undefined): string {
  if (!error) return 'the request body does not match the contract';
  const field = error.instancePath.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
  if (error.keyword === 'required') return `${String(error.params['missingProperty'])} is required`;
  if (error.keyword === 'type' && field === '') return `the request body must be a JSON ${String(error.params['type'])}`;
  return `${field || 'the request body'} ${error.message ?? 'is invalid'}`;
}
