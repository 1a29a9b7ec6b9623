/**
 * Lines that wait up to `flushMs` (or until `chunkBytes` wait) and are handed to `sink` together, as
 * whole lines: a write() per line to a pipe wakes its reader each time, and under load that cost a
 * tenth of the gateway's CPU. `flushMs` 0 hands each line over as it comes.
 */
export class LineBatcher {
  private waiting = '';
  private waitingBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: (chunk: string) => void,
    private readonly flushMs: number,
    /** The most a chunk holds (a line longer than this goes alone). */
    private readonly chunkBytes: number,
  ) {}

  add(line: string): void {
    if (this.flushMs <= 0) {
      this.sink(line);
      return;
    }
    const bytes = Buffer.byteLength(line);
    if (this.waitingBytes + bytes > this.chunkBytes) this.flush();
    this.waiting += line;
    this.waitingBytes += bytes;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      // A waiting line does not keep the process alive; shutdown flushes it.
      this.timer.unref();
    }
  }

  /** Drops what waits and its timer: the sink can take no more (the log failed). */
  discard(): void {
    this.cancelTimer();
    this.waiting = '';
    this.waitingBytes = 0;
  }

  /** Hands over what waits, now. */
  flush(): void {
    this.cancelTimer();
    if (this.waiting === '') return;
    const chunk = this.waiting;
    this.waiting = '';
    this.waitingBytes = 0;
    this.sink(chunk);
  }

  private cancelTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
