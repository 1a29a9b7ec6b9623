import { ProviderError, type GenerationResult, type ModelStream, type StreamPart } from './provider';

/** Non-streaming generation built on a provider's stream: the text parts joined, the finish part's facts. */
export async function collectStream(stream: ModelStream, startedAt: number): Promise<GenerationResult> {
  let text = '';
  let finish: Extract<StreamPart, { type: 'finish' }> | undefined;
  for await (const part of stream) {
    if (part.type === 'text') text += part.text;
    else finish = part;
  }
  if (!finish) throw new ProviderError('the stream ended without a finish', { kind: 'bad_response' });
  return {
    text,
    finishReason: finish.finishReason,
    upstreamModel: finish.upstreamModel,
    usage: finish.usage,
    upstreamRequestId: stream.upstreamRequestId,
    latencyMs: Math.round(performance.now() - startedAt),
  };
}

/**
 * A provider's parts as a ModelStream that releases what the call holds (a concurrency slot, a
 * sequence) exactly once: when the parts end, fail, or the consumer leaves early. Errors pass
 * through `mapError`, so consumers only ever see ProviderError.
 */
export function modelStream(
  parts: AsyncIterable<StreamPart>,
  settings: { readonly upstreamRequestId?: string; readonly release: () => void; readonly mapError: (error: unknown) => ProviderError },
): ModelStream {
  const { mapError } = settings;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    settings.release();
  };
  return {
    upstreamRequestId: settings.upstreamRequestId,
    [Symbol.asyncIterator](): AsyncIterator<StreamPart> {
      const inner = parts[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const next = await inner.next();
            if (next.done) release();
            return next;
          } catch (error) {
            release();
            throw mapError(error);
          }
        },
        async return() {
          try {
            await inner.return?.();
          } catch {
            // Leaving early: how the upstream call ended no longer matters.
          } finally {
            release();
          }
          return { done: true, value: undefined };
        },
      };
    },
  };
}
