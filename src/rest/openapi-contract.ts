import { readFileSync } from 'node:fs';
import path from 'node:path';
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
  readonly responses: Record<string, { content?: Record<string, { schema: SchemaObject }> }>;
}

type OpenApiDocument = {
  readonly paths: Record<string, Record<string, OperationObject>>;
  readonly [key: string]: unknown;
};

/** schema/openapi.yaml, loaded once: served as JSON and YAML, and used to shape REST answers. */
export class OpenApiContract {
  readonly yaml: string;
  readonly json: string;
  private readonly document: OpenApiDocument;

  constructor(filePath: string) {
    this.yaml = readFileSync(filePath, 'utf8');
    this.document = YAML.parse(this.yaml) as OpenApiDocument;
    this.json = JSON.stringify(this.document);
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
      .reduce<unknown>(
        (node, segment) => (node as Record<string, unknown> | undefined)?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')],
        this.document,
      );
    return this.resolve((found ?? {}) as SchemaObject);
  }
}

export const defaultContractPath = path.resolve(
  __dirname,
  __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../../schema/openapi.yaml' : '../../schema/openapi.yaml',
);
