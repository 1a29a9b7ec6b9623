import type { GenerationRecord } from '../pipeline/generation-record';

/**
 * What one HTTP request did, filled in as it is served: the route template (never the raw path), the
 * operations it ran, the caller, and the generations it made. Read once, when the response closes, by
 * the access log and the request metrics.
 */
export class RequestLog {
  /** The route template: `/api/v1/generations/{generation_id}`, `/graphql`, ...; `unmatched` for anything else. */
  route = 'unmatched';
  /** GraphQL root fields or REST operations run, in order. */
  readonly operations: string[] = [];
  callerName: string | undefined;
  readonly generations: GenerationRecord[] = [];
  readonly startedAt = performance.now();

  constructor(
    readonly requestId: string,
    readonly method: string,
  ) {}

  ranOperation(name: string): void {
    if (!this.operations.includes(name)) this.operations.push(name);
  }
}
