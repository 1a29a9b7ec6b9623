interface RouteConfig {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  /** The status of a successful answer (SOFA's own name for it); 200 when absent. 204 answers carry no body. */
  readonly responseStatus?: 200 | 201 | 202 | 204;
}

export const restBasePath = '/api/v1';

/** The spec's paths for each GraphQL root field; SOFA generates the operations from the schema. */
export const operationRoutes = {
  'Query.health': { method: 'GET', path: '/health' },
  'Query.status': { method: 'GET', path: '/status' },
  'Query.ready': { method: 'GET', path: '/ready' },
  'Query.models': { method: 'GET', path: '/models' },
  'Query.model': { method: 'GET', path: '/models/:model_id' },
  'Mutation.generate': { method: 'POST', path: '/generate' },
  'Mutation.generate_batch': { method: 'POST', path: '/generate/batch' },
  'Mutation.compare': { method: 'POST', path: '/generate/compare' },
  'Query.generations': { method: 'GET', path: '/generations' },
  'Query.generation': { method: 'GET', path: '/generations/:generation_id' },
  'Query.usage': { method: 'GET', path: '/usage' },
  'Query.budgets': { method: 'GET', path: '/budgets' },
  'Mutation.create_budget': { method: 'POST', path: '/budgets', responseStatus: 201 },
  'Query.budget': { method: 'GET', path: '/budgets/:budget_id' },
  'Mutation.update_budget': { method: 'PATCH', path: '/budgets/:budget_id' },
  'Mutation.delete_budget': { method: 'DELETE', path: '/budgets/:budget_id', responseStatus: 204 },
  'Mutation.submit_feedback': { method: 'POST', path: '/feedback', responseStatus: 201 },
  'Query.feedback': { method: 'GET', path: '/feedback' },
  'Query.feedback_summary': { method: 'GET', path: '/feedback/summary' },
  'Query.prompts': { method: 'GET', path: '/prompts' },
  'Mutation.create_prompt_version': { method: 'POST', path: '/prompts', responseStatus: 201 },
  'Query.prompt': { method: 'GET', path: '/prompts/:name' },
  'Query.prompt_version': { method: 'GET', path: '/prompts/:name/versions/:version' },
  'Mutation.generate_from_prompt': { method: 'POST', path: '/prompts/:name/generate' },
  'Query.datasets': { method: 'GET', path: '/datasets' },
  'Mutation.create_dataset': { method: 'POST', path: '/datasets', responseStatus: 201 },
  'Query.dataset': { method: 'GET', path: '/datasets/:dataset_id' },
  'Query.dataset_items': { method: 'GET', path: '/datasets/:dataset_id/items' },
  'Mutation.add_dataset_items': { method: 'POST', path: '/datasets/:dataset_id/items' },
  'Query.evaluations': { method: 'GET', path: '/evaluations' },
  'Mutation.start_evaluation': { method: 'POST', path: '/evaluations', responseStatus: 202 },
  'Query.evaluation': { method: 'GET', path: '/evaluations/:evaluation_id' },
  'Query.evaluation_results': { method: 'GET', path: '/evaluations/:evaluation_id/results' },
  'Mutation.cancel_evaluation': { method: 'POST', path: '/evaluations/:evaluation_id/cancel' },
} as const satisfies Record<string, RouteConfig>;

export type OperationName = keyof typeof operationRoutes;

/** The status of an operation's successful answer. */
export function successStatus(operation: OperationName): number {
  const route: RouteConfig = operationRoutes[operation];
  return route.responseStatus ?? 200;
}

/** Methods whose JSON body carries the operation's variables. */
export const methodsWithBody: ReadonlySet<string> = new Set(['POST', 'PATCH']);

/** Documents served beside the operations. */
export const documentRoutes = {
  '/openapi.json': { method: 'GET' },
  '/openapi.yaml': { method: 'GET' },
} as const;

/** Routes written by hand in src/rest (answers SOFA cannot give: JSON Lines, streams), documented in the same contract. */
export const handWrittenRoutes = {
  '/feedback/export': { method: 'GET' },
  '/generate/stream': { method: 'POST' },
} as const;

export type HandWrittenRoute = keyof typeof handWrittenRoutes;

export type RouteMatch =
  /** `pathParameters` hold the raw (still percent-encoded) segments, by parameter name. */
  | { kind: 'operation'; operation: OperationName; openApiPath: string; pathParameters: ReadonlyMap<string, string> }
  | { kind: 'document'; path: keyof typeof documentRoutes }
  | { kind: 'hand_written'; path: HandWrittenRoute }
  | { kind: 'wrong_method'; allowed: string[] }
  | { kind: 'none' };

interface CompiledRoute {
  readonly pattern: RegExp;
  readonly parameterNames: readonly string[];
  readonly method: string;
  readonly openApiPath: string;
  readonly operation: OperationName;
}

const parameter = /:([a-z_]+)/g;

const compiled: CompiledRoute[] = (Object.keys(operationRoutes) as OperationName[]).map((operation) => {
  const { method, path } = operationRoutes[operation];
  const pattern = new RegExp(`^${path.replace(parameter, '([^/]+)')}$`);
  const parameterNames = [...path.matchAll(parameter)].map((match) => match[1]!);
  return { pattern, parameterNames, method, operation, openApiPath: path.replace(parameter, '{$1}') };
});

/** Matches a path below the base path, telling a wrong method apart from an unknown path. */
export function matchRoute(method: string, relativePath: string): RouteMatch {
  if (relativePath in documentRoutes) {
    const path = relativePath as keyof typeof documentRoutes;
    return method === 'GET' ? { kind: 'document', path } : { kind: 'wrong_method', allowed: ['GET'] };
  }
  if (relativePath in handWrittenRoutes) {
    const path = relativePath as HandWrittenRoute;
    const allowed = handWrittenRoutes[path].method;
    return method === allowed ? { kind: 'hand_written', path } : { kind: 'wrong_method', allowed: [allowed] };
  }
  const candidates = compiled.filter((route) => route.pattern.test(relativePath));
  const exact = candidates.find((route) => route.method === method);
  if (exact) {
    const segments = exact.pattern.exec(relativePath)?.slice(1) ?? [];
    const pathParameters = new Map(exact.parameterNames.map((name, index) => [name, segments[index] ?? '']));
    return { kind: 'operation', operation: exact.operation, openApiPath: exact.openApiPath, pathParameters };
  }
  if (candidates.length > 0) return { kind: 'wrong_method', allowed: candidates.map((route) => route.method) };
  return { kind: 'none' };
}
