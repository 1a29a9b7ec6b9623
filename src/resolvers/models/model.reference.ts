import type { RequestContext } from '../../context';
import { ApiError } from '../../errors/api-error';
import type { ModelView } from '../../services/model.service';

/** Resolves `Model` entities for the supergraph: another subgraph holds a model id, we supply the rest. */
export async function resolveModelReference(reference: { id: string }, context: RequestContext): Promise<ModelView | null> {
  try {
    return await context.services.models.getModel(reference.id);
  } catch (error) {
    // An id another subgraph knows but we do not is a null entity, not an error for the whole query.
    if (error instanceof ApiError && error.code === 'model_not_found') return null;
    throw error;
  }
}
