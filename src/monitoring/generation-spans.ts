import type { GenerationRecord, GenerationRecorder } from '../pipeline/generation-record';
import type { ModelApi } from '../providers/provider';

export interface GenerationSpanOptions {
  /** The API a model is called through (the catalog's `api`); undefined for a model the catalog does not list. */
  readonly apiOf?: (modelId: string) => ModelApi | undefined;
  /** The GenAI conventions' provider name for an endpoint (`openai`, `llama.cpp`); undefined: the endpoint's own name. */
  readonly providerNameOf?: (endpoint: string) => string | undefined;
}

/**
 * `gen_ai.provider.name` by provider kind. The conventions name a provider by the API the client
 * speaks, so OpenAI-compatible servers (vLLM, Ollama, TGI) are `openai`; the endpoint's own name
 * goes in `llmop.endpoint`.
 */
export const GEN_AI_PROVIDER_NAMES: Readonly<Record<string, string>> = {
  openai: 'openai',
  'openai-compatible': 'openai',
  local: 'llama.cpp',
};

/**
 * The GenAI semantic conventions' `gen_ai.operation.name`: what was asked of the model, `chat` (a chat
 * completions API) or `text_completion` (the legacy completions API). Without the model's API, the
 * surface decides: the OpenAI-compatible route and streams are conversations.
 */
function operationOf(record: GenerationRecord, api: ModelApi | undefined): string {
  if (api === 'chat') return 'chat';
  if (api === 'completion') return 'text_completion';
  return record.source === 'openai' || record.source === 'stream' ? 'chat' : 'text_completion';
}

/**
 * One span per recorded generation, with the OpenTelemetry GenAI semantic conventions, a child of
 * whatever span is active where the pipeline records it (the GraphQL root field's resolver, or the
 * HTTP request's): a sibling of the upstream call's span. It starts when the generation was admitted
 * and ends once its ledger row is committed. Never a prompt or a text, only figures and names.
 * Subscribed only when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT set).
 */
export function traceGenerations(recorder: GenerationRecorder, options: GenerationSpanOptions = {}): void {
  // Required here, not at the top: the app calls this only with tracing on, and the API costs ~40 ms to load.
  const { SpanKind, SpanStatusCode, trace } = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const tracer = trace.getTracer('llmop');
  recorder.subscribe((record) => {
    const operation = operationOf(record, options.apiOf?.(record.modelId));
    const span = tracer.startSpan(`${operation} ${record.modelId}`, {
      kind: SpanKind.CLIENT,
      startTime: record.createdAt,
      attributes: {
        'gen_ai.operation.name': operation,
        'gen_ai.provider.name': options.providerNameOf?.(record.provider) ?? record.provider,
        'gen_ai.request.model': record.modelId,
        'gen_ai.response.model': record.upstreamModel,
        'gen_ai.request.max_tokens': record.parameters.maxTokens,
        'gen_ai.request.temperature': record.parameters.temperature,
        'gen_ai.request.top_p': record.parameters.topP,
        ...(record.parameters.seed === undefined ? {} : { 'gen_ai.request.seed': record.parameters.seed }),
        'gen_ai.usage.input_tokens': record.inputTokens,
        'gen_ai.usage.output_tokens': record.outputTokens,
        ...(record.finishReason ? { 'gen_ai.response.finish_reasons': [record.finishReason] } : {}),
        'llmop.generation_id': record.generationId,
        'llmop.request_id': record.requestId,
        'llmop.source': record.source,
        'llmop.cost_usd': record.costUsd.total,
        'llmop.attempts': record.attempts,
        'llmop.endpoint': record.provider,
        'llmop.in_ledger': record.inLedger,
        ...(record.timeToFirstTokenMs === undefined ? {} : { 'llmop.time_to_first_token_ms': record.timeToFirstTokenMs }),
      },
    });
    if (record.status !== 'succeeded') span.setStatus({ code: SpanStatusCode.ERROR, message: record.error ?? record.status });
    if (record.error) span.setAttribute('error.type', record.error);
    else if (!record.inLedger) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'ledger_unavailable' });
      span.setAttribute('error.type', 'ledger_unavailable');
    }
    span.end();
  });
}

/**
 * A span per evaluation case, each the root of a trace of its own: the case's generations (and, with
 * a parent now, their upstream calls) are its children. From a fresh root context, not the one the
 * case was queued in: that is a finished request's, or start-up's, where tracing is suppressed.
 */
export function evaluationCaseTracer(): (
  job: { readonly evaluationId: string; readonly itemIndex: number },
  work: () => Promise<void>,
) => Promise<void> {
  const { ROOT_CONTEXT, SpanStatusCode, context, trace } = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const tracer = trace.getTracer('llmop');
  return (job, work) =>
    context.with(ROOT_CONTEXT, () =>
      tracer.startActiveSpan(
        'evaluation case',
        { attributes: { 'llmop.evaluation_id': job.evaluationId, 'llmop.evaluation.item_index': job.itemIndex } },
        async (span) => {
          try {
            await work();
          } catch (error) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
            throw error;
          } finally {
            span.end();
          }
        },
      ),
    );
}
