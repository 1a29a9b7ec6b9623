import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../project-root';

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

/**
 * schema/openapi.yaml (the contract as written) and schema/openapi.json (the same document, emitted by
 * `npm run schema:emit`), loaded once: served as YAML and JSON, and used to shape REST answers.
 * Reading the emitted JSON keeps a YAML parser (~100 ms) out of start-up.
 */
export class OpenApiContract {
  readonly yaml: string;
  readonly json: string;
  private readonly document: OpenApiDocument;

  constructor(yamlPath: string) {
    this.yaml = readFileSync(yamlPath, 'utf8');
    this.document = JSON.parse(readFileSync(emittedJsonPath(yamlPath), 'utf8')) as OpenApiDocument;
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

export const defaultContractPath = path.join(projectRoot, 'schema/openapi.yaml');

/** Where `npm run schema:emit` writes the JSON form of an OpenAPI YAML file. */
export const emittedJsonPath = (yamlPath: string): string => yamlPath.replace(/\.ya?ml$/, '.json');
