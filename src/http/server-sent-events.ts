import type { ServerResponse } from 'node:http';
import { drained } from './drained';

/**
 * A `text/event-stream` answer. Each event is written as it comes (no buffering here, and headers
 * that ask proxies not to buffer either); a comment line goes out whenever `heartbeatMs` pass without
 * a write, so idle connections are not cut by proxies. A slow client slows the producer: `send`
 * waits for the socket to drain.
 */
export class ServerSentEvents {
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly response: ServerResponse,
    heartbeatMs: number,
    headers: Readonly<Record<string, string>> = {},
  ) {
    response.statusCode = 200;
    for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
    response.setHeader('content-type', 'text/event-stream; charset=utf-8');
    response.setHeader('cache-control', 'no-cache');
    response.setHeader('x-accel-buffering', 'no');
    // The status line leaves now, in one write with whatever is sent in this same tick (the first
    // event, when it is already there), rather than a write of its own.
    const socket = response.socket;
    socket?.cork();
    response.flushHeaders();
    if (socket) process.nextTick(() => socket.uncork());
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), heartbeatMs);
    this.heartbeat.unref();
    response.once('close', () => clearInterval(this.heartbeat));
  }

  get closed(): boolean {
    return this.response.destroyed || this.response.writableEnded;
  }

  /** One event: `event: <name>` when named, then the data (one line: JSON has no raw newlines). */
  async send(data: string, event?: string): Promise<void> {
    if (!this.write(event ? `event: ${event}\ndata: ${data}\n\n` : `data: ${data}\n\n`)) await drained(this.response);
  }

  end(last?: string): void {
    clearInterval(this.heartbeat);
    if (!this.closed) this.response.end(last);
  }

  private write(chunk: string): boolean {
    if (this.closed) return true;
    // Any write counts as activity: the next comment is due a whole interval from now.
    this.heartbeat.refresh();
    return this.response.write(chunk);
  }
}
