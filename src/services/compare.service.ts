import { ApiError, modelNotFound, validationError } from '../errors/api-error';
import type { CallContext } from '../pipeline/call-context';
import { failedGenerationId, type GenerationPipeline } from '../pipeline/generation-pipeline';
import type { ProviderRegistry } from '../providers/registry';
import { checkModelId, checkPrompt, type RequestedParameters, resolveParameters } from './generation-parameters';

/** The contract's bounds on the models of one comparison. */
export const COMPARE_LIMITS = { minModels: 2, maxModels: 10 } as const;

export interface CompareInput extends RequestedParameters {
  readonly prompt: string;
  readonly modelIds: readonly string[];
}

export interface CompareMetrics {
  readonly latencyMs: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens: number;
}

/** One model's answer; a failure is this model's own result, never the request's. */
export interface CompareResult {
  readonly modelId: string;
  readonly success: boolean;
  readonly text: string | null;
  readonly error: string | null;
  /** Zeros when the model failed. */
  readonly metrics: CompareMetrics;
  readonly costUsd: number;
  /** The model's ledger row; null when none was started (a refusal before it, such as a budget's). */
  readonly generationId: string | null;
}

export interface CompareOutcome {
  readonly prompt: string;
  /** In the order the models were asked for. */
  readonly results: readonly CompareResult[];
  /** Lowest latency among the successes (the first asked on a tie); null when none succeeded. */
  readonly fastestModelId: string | null;
  /** Lowest cost among the successes (the first asked on a tie); null when none succeeded. */
  readonly cheapestModelId: string | null;
  readonly timestamp: Date;
}

const noMetrics: CompareMetrics = { latencyMs: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0 };

/**
 * One prompt on several models side by side. The request is checked whole before anything runs
 * (parameters, the list of models, every model known); then every model generates at once through
 * the pipeline (ledger row with source `compare`, budgets, retries), so the answer takes about as long
 * as the slowest model.
 */
export class CompareService {
  constructor(
    private readonly pipeline: GenerationPipeline,
    private readonly registry: ProviderRegistry,
  ) {}

  async compare(input: CompareInput, call: CallContext): Promise<CompareOutcome> {
    const prompt = checkPrompt(input.prompt);
    const parameters = resolveParameters(input);
    const modelIds = checkModelIds(input.modelIds);
    const found = await Promise.all(modelIds.map((modelId) => this.registry.findModel(modelId)));
    const unknown = modelIds.find((_modelId, index) => found[index] === undefined);
    if (unknown !== undefined) throw modelNotFound(unknown);

    const settled = await Promise.allSettled(modelIds.map((modelId) => this.generateOne(prompt, modelId, parameters, call)));
    // Only an unexpected error (a bug, not a model's failure) fails the request, once every model has settled.
    const broken = settled.find((outcome) => outcome.status === 'rejected');
    if (broken) throw broken.reason;
    const results = settled.map((outcome) => (outcome as PromiseFulfilledResult<CompareResult>).value);
    const successes = results.filter((result) => result.success);
    return {
      prompt,
      results,
      fastestModelId: lowest(successes, (result) => result.metrics.latencyMs),
      cheapestModelId: lowest(successes, (result) => result.costUsd),
      timestamp: new Date(),
    };
  }

  private async generateOne(prompt: string, modelId: string, parameters: RequestedParameters, call: CallContext): Promise<CompareResult> {
    try {
      const outcome = await this.pipeline.generate({ prompt, modelId, ...parameters, origin: { source: 'compare' } }, call);
      return {
        modelId,
        success: true,
        text: outcome.text,
        error: null,
        metrics: {
          latencyMs: outcome.metrics.latencyMs,
          inputTokens: outcome.metrics.inputTokens,
          outputTokens: outcome.metrics.outputTokens,
          totalTokens: outcome.metrics.totalTokens,
        },
        costUsd: outcome.metadata.costUsd.total,
        generationId: outcome.metadata.generationId,
      };
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const { message, extensions } = error;
      return {
        modelId,
        success: false,
        text: null,
        // Worded as a batch's failed prompt is.
        error: extensions.details ? `${message}: ${extensions.details}` : message,
        metrics: noMetrics,
        costUsd: 0,
        generationId: failedGenerationId(error),
      };
    }
  }
}

function checkModelIds(modelIds: readonly string[]): readonly string[] {
  const { minModels, maxModels } = COMPARE_LIMITS;
  if (modelIds.length < minModels || modelIds.length > maxModels) {
    throw validationError('Invalid model_ids', `model_ids must hold between ${minModels} and ${maxModels} items, got ${modelIds.length}`);
  }
  const seen = new Set<string>();
  for (const modelId of modelIds) {
    checkModelId(modelId);
    if (seen.has(modelId)) throw validationError('Invalid model_ids', `model_ids must not repeat a model: "${modelId}" is listed twice`);
    seen.add(modelId);
  }
  return modelIds;
}

/** The model id of the first result with the lowest figure; null for no results. */
function lowest(results: readonly CompareResult[], figure: (result: CompareResult) => number): string | null {
  let best: CompareResult | undefined;
  for (const result of results) if (best === undefined || figure(result) < figure(best)) best = result;
  return best?.modelId ?? null;
}
