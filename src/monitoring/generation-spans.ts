import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { GenerationRecord, GenerationRecorder } from '../pipeline/generation-record';

/** What each source's generation is, in the GenAI semantic conventions' `gen_ai.operation.name`. */
const operationOf = (record: GenerationRecord): string =>
  record.source === 'openai' || record.source === 'stream' ? 'chat' : 'text_completion';

/**
 * One span per recorded generation, with the OpenTelemetry GenAI semantic conventions, a child of
 * whatever span is active where the pipeline records it (the HTTP request's, the GraphQL operation's).
 * Without a registered tracer provider (OTEL_EXPORTER_OTLP_ENDPOINT unset) the API's tracer is a no-op.
 */
export function traceGenerations(recorder: GenerationRecorder): void {
  const tracer = trace.getTracer('llmop');
  recorder.subscribe((record) => {
    const operation = operationOf(record);
    const span = tracer.startSpan(`${operation} ${record.modelId}`, {
      kind: SpanKind.CLIENT,
      startTime: record.createdAt,
      attributes: {
        'gen_ai.operation.name': operation,
        'gen_ai.provider.name': record.provider,
        'gen_ai.request.model': record.modelId,
        'gen_ai.response.model': record.upstreamModel,
        'gen_ai.request.max_tokens': record.parameters.maxTokens,
        'gen_ai.request.temperature': record.parameters.temperature,
        'gen_ai.request.top_p': record.parameters.topP,
        'gen_ai.usage.input_tokens': record.inputTokens,
        'gen_ai.usage.output_tokens': record.outputTokens,
        ...(record.finishReason ? { 'gen_ai.response.finish_reasons': [record.finishReason] } : {}),
        'llmop.generation_id': record.generationId,
        'llmop.source': record.source,
        'llmop.cost_usd': record.costUsd.total,
        'llmop.attempts': record.attempts,
      },
    });
    if (record.status !== 'succeeded') span.setStatus({ code: SpanStatusCode.ERROR, message: record.error ?? record.status });
    if (record.error) span.setAttribute('error.type', record.error);
    span.end();
  });
}
