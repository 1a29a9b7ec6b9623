import type { GenerationRecorder } from '../pipeline/generation-record';
import { type AccessLogWriter, accessLogLine } from './access-log';
import type { GatewayMetrics } from './metrics';
import { RequestLog } from './request-log';

/** The longest a closed request's line waits for its generations to be recorded (a ledger that hangs). */
const recordingWaitMs = 30_000;

/**
 * Watches every HTTP request from its start to its response closing: what it ran and the generations
 * it made (the pipeline hands each record to the request's log), then one access-log line and the
 * request metrics, once the response has closed and its generations are recorded (a stream cut by its
 * client is recorded just after). A WebSocket upgrade is one request too, from the upgrade to the
 * socket's close; so is a request Node could not parse. Generation metrics are counted here too,
 * evaluation cells included.
 */
export class RequestMonitor {
  constructor(
    recorder: GenerationRecorder,
    private readonly metrics: GatewayMetrics | undefined,
    private readonly accessLog: AccessLogWriter | undefined,
  ) {
    recorder.subscribe((record) => this.metrics?.observeGeneration(record));
  }

  begin(requestId: string, method: string): RequestLog {
    return new RequestLog(requestId, method);
  }

  /**
   * The response closed with `status` (`aborted`: before it was complete): the line is written once the
   * request's generations are recorded. Call it once per `begin`.
   */
  end(log: RequestLog, status: number, aborted: boolean): void {
    const latencyMs = performance.now() - log.startedAt;
    this.metrics?.observeRequest(log.route, log.method, status, latencyMs / 1000);
    const write = (): void => this.accessLog?.write(accessLogLine(log, status, aborted, latencyMs));
    // The usual case, nothing left to record, costs no timer.
    if (!log.awaitingRecords) return write();
    let written = false;
    const writeOnce = (): void => {
      if (written) return;
      written = true;
      clearTimeout(timer);
      write();
    };
    const timer = setTimeout(writeOnce, recordingWaitMs);
    timer.unref();
    log.afterRecording(writeOnce);
  }
}
