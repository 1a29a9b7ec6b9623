interface RouteConfig {
  readonly method: 'GET' | 'POST';
  readonly path: string;
}

/** The spec's paths for each GraphQL root field; SOFA generates the handlers from the resolvers. */
export const operationRoutes = {
  'Query.health': { method: 'GET', path: '/health' },
  'Query.status': { method: 'GET', path: '/status' },
  'Query.ready': { method: 'GET', path: '/ready' },
  'Query.models': { method: 'GET', path: '/models' },
  'Query.model': { method: 'GET', path: '/models/:model_id' },
  'Mutation.generate': { method: 'POST', path: '/generate' },
  'Mutation.generate_batch': { method: 'POST', path: '/generate/batch' },
} as const satisfies Record<string, RouteConfig>;

export type OperationName = keyof typeof operationRoutes;

/** Documents served beside the operations. */
export const documentRoutes = {
  '/openapi.json': { method: 'GET' },
  '/openapi.yaml': { method: 'GET' },
} as const;

export type RouteMatch =
  | { kind: 'operation'; operation: OperationName; openApiPath: string }
  | { kind: 'document'; path: keyof typeof documentRoutes }
  | { kind: 'wrong_method'; allowed: string[] }
  | { kind: 'none' };

interface CompiledRoute {
  readonly pattern: RegExp;
  readonly method: string;
  readonly openApiPath: string;
  readonly operation: OperationName;
}

const compiled: CompiledRoute[] = (Object.keys(operationRoutes) as OperationName[]).map((operation) => {
  const { method, path } = operationRoutes[operation];
  const pattern = new RegExp(`^${path.replace(/:[a-z_]+/g, '[^/]+')}$`);
  return { pattern, method, operation, openApiPath: path.replace(/:([a-z_]+)/g, '{$1}') };
});

/** Matches a path below the base path, telling a wrong method apart from an unknown path. */
export function matchRoute(method: string, relativePath: string): RouteMatch {
  if (relativePath in documentRoutes) {
    const path = relativePath as keyof typeof documentRoutes;
    return method === 'GET' ? { kind: 'document', path } : { kind: 'wrong_method', allowed: ['GET'] };
  }
  const candidates = compiled.filter((route) => route.pattern.test(relativePath));
  const exact = candidates.find((route) => route.method === method);
  if (exact) return { kind: 'operation', operation: exact.operation, openApiPath: exact.openApiPath };
  if (candidates.length > 0) return { kind: 'wrong_method', allowed: candidates.map((route) => route.method) };
  return { kind: 'none' };
}
