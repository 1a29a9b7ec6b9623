import { defaultFieldResolver, type GraphQLField, type GraphQLFieldResolver, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import type { MiddlewareFn } from 'type-graphql';
import type { RequestContext } from '../context';

type FieldResolver = GraphQLFieldResolver<unknown, RequestContext>;

/** Every root field of a schema: Query, Mutation and Subscription fields, federation's `_entities` and `_service` included. */
export function rootFieldsOf(
  schema: GraphQLSchema,
): Array<{ readonly type: GraphQLObjectType; readonly field: GraphQLField<unknown, RequestContext> }> {
  const rootTypes = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()];
  return rootTypes.flatMap((type) => (type ? Object.values(type.getFields()).map((field) => ({ type, field })) : []));
}

/**
 * Runs the middlewares, first outermost, around each root field's resolver: admission and error masking
 * happen once per operation field. Nested fields run bare; they belong to an operation already admitted.
 * A subscription is wrapped where it starts (`subscribe`), not on every event.
 */
export function applyRootFieldMiddlewares(schema: GraphQLSchema, middlewares: ReadonlyArray<MiddlewareFn<RequestContext>>): void {
  if (middlewares.length === 0) return;
  for (const { type, field } of rootFieldsOf(schema)) {
    if (type === schema.getSubscriptionType() && field.subscribe) field.subscribe = withMiddlewares(field.subscribe, middlewares);
    else field.resolve = withMiddlewares(field.resolve ?? defaultFieldResolver, middlewares);
  }
}

// As type-graphql runs them: a middleware that resolves to undefined stands for what its next() resolved to.
function withMiddlewares(resolve: FieldResolver, middlewares: ReadonlyArray<MiddlewareFn<RequestContext>>): FieldResolver {
  return (root, args, context, info) => {
    const action = { root, args, context, info };
    const run = async (index: number): Promise<unknown> => {
      const middleware = middlewares[index];
      if (!middleware) return resolve(root, args, context, info);
      let nextResult: Promise<unknown> | undefined;
      const result: unknown = await middleware(action, () => (nextResult = run(index + 1)));
      return result !== undefined ? result : nextResult;
    };
    return run(0);
  };
}
