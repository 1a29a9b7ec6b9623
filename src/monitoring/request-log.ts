import type { GenerationRecord } from '../pipeline/generation-record';

/**
 * What one HTTP request did, filled in as it is served: the route template (never the raw path), the
 * operations it ran, the caller, and the generations it made. Read once, when the response has closed
 * and every generation it started is recorded, by the access log and the request metrics.
 */
export class RequestLog {
  /** The route template: `/api/v1/generations/{generation_id}`, `/graphql`, ...; `unmatched` for anything else. */
  route = 'unmatched';
  /** GraphQL root fields or REST operations run, in order. */
  readonly operations: string[] = [];
  callerName: string | undefined;
  /**
   * Its generations, as sums: a WebSocket connection is one request that may make generations for
   * hours, so nothing here grows with their number (the models come from the catalog's bounded set).
   */
  readonly generations = { count: 0, models: new Set<string>(), inputTokens: 0, outputTokens: 0, costUsd: 0 };
  readonly startedAt = performance.now();
  /** Generations started (ledger rows opened) and not yet recorded: a cancelled stream is recorded after its client left. */
  private unrecorded = 0;
  /** Told once nothing is left unrecorded. */
  private whenRecorded: (() => void) | undefined;

  constructor(
    readonly requestId: string,
    readonly method: string,
  ) {}

  ranOperation(name: string): void {
    if (!this.operations.includes(name)) this.operations.push(name);
  }

  generationsStarted(count: number): void {
    this.unrecorded += count;
  }

  recorded(record: GenerationRecord): void {
    const sums = this.generations;
    sums.count += 1;
    sums.models.add(record.modelId);
    sums.inputTokens += record.inputTokens;
    sums.outputTokens += record.outputTokens;
    sums.costUsd += record.costUsd.total;
    this.unrecorded = Math.max(0, this.unrecorded - 1);
    if (this.unrecorded === 0) this.whenRecorded?.();
  }

  /** Whether a generation it started is still to be recorded. */
  get awaitingRecords(): boolean {
    return this.unrecorded > 0;
  }

  /** Runs `then` once every generation it started is recorded (at once when none is pending). */
  afterRecording(then: () => void): void {
    if (this.unrecorded === 0) then();
    else this.whenRecorded = then;
  }
}
