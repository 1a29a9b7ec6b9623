import type { Caller } from './caller';
import type { AbortSource, ClientAbort } from './client-abort';
import type { GenerationLoader } from './generation-loader';
import type { GenerationRecord } from './generation-record';

/** What every surface hands the pipeline for one incoming request. */
export interface CallContext {
  readonly requestId: string;
  readonly caller: Caller;
  /** Per request, so batching never mixes two callers' prompts. */
  readonly generationLoader: GenerationLoader;
  /** Aborted when the client goes away. */
  readonly signal?: AbortSignal;
  /** The same, where the surface has it without an AbortSignal (HTTP requests): what the pipeline listens to. */
  readonly clientAbort?: ClientAbort;
  /** Told how many generations the request started (rows opened) and each one's record, so its access-log line sums them once all are in. */
  readonly requestLog?: { generationsStarted(count: number): void; recorded(record: GenerationRecord): void };
}

/** What tells the pipeline that the caller went away: the cheap ClientAbort when the surface gave one. */
export const clientGone = (call: CallContext): AbortSource | undefined => call.clientAbort ?? call.signal;
