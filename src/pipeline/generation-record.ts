import type { FinishReason } from '../providers/provider';
import type { GenerationStatus, LedgerSource, RecordedParameters } from '../storage/ledger-types';
import type { Caller } from './caller';
import type { CostBreakdown } from './cost';

/** One finished generation, as metrics and traces see it, once its ledger row is committed (or failed to be). */
export interface GenerationRecord {
  /** The ledger row's id. */
  readonly generationId: string;
  readonly requestId: string;
  readonly caller: Caller;
  readonly source: LedgerSource;
  readonly modelId: string;
  readonly provider: string;
  readonly upstreamModel: string;
  /** `cancelled`: the client went away before the answer. */
  readonly status: GenerationStatus;
  /** The error code of a failed generation; null when it succeeded. */
  readonly error: string | null;
  readonly finishReason: FinishReason | null;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costUsd: CostBreakdown;
  readonly latencyMs: number;
  /** Upstream calls made, retries included. */
  readonly attempts: number;
  /** The parameters it ran with (max_tokens as applied, after any budget lowering). */
  readonly parameters: RecordedParameters;
  /** Streams: from the pipeline taking the call (admission included) to the first text; absent when none came or it was not a stream. */
  readonly timeToFirstTokenMs?: number;
  readonly createdAt: Date;
  /** False when its ledger row could not be committed: the caller got 503 `ledger_unavailable`, the ledger has no trace of it. */
  readonly inLedger: boolean;
}

export type GenerationRecordListener = (record: GenerationRecord) => void;

/**
 * Where finished generations go: the pipeline hands each record to every listener (the ledger,
 * metrics). A listener that throws is reported, never allowed to fail the generation it records.
 */
export class GenerationRecorder {
  private readonly listeners = new Set<GenerationRecordListener>();

  constructor(private readonly onListenerError: (error: unknown) => void) {}

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: GenerationRecordListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  record(record: GenerationRecord): void {
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
