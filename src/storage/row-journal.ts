import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

/**
 * An append-only file of ledger rows, in front of SQLite: a row's latest state is appended (one
 * `write()`, ~5 µs) before the generation goes on, and reaches SQLite a few milliseconds later in a
 * batch, where a generation's start and finish collapse into one upsert. A `write()` that returned
 * is in the kernel's page cache, so it survives a killed process exactly as a WAL commit with
 * `synchronous=NORMAL` does (not a power cut); the next start replays what SQLite did not get.
 *
 * Two segment files: rows are appended to the active one; a flush makes the other one active and
 * empties the first once its rows are committed. So the file never grows beyond one flush's rows,
 * however busy the ledger is.
 */
export class RowJournal {
  private readonly paths: readonly [string, string];
  private readonly fds: [number, number];
  private active: 0 | 1 = 0;
  private closed = false;

  constructor(basePath: string) {
    this.paths = segmentPaths(basePath);
    // O_APPEND: every write lands at the end, also after the segment was emptied.
    this.fds = [openSync(this.paths[0], 'a'), openSync(this.paths[1], 'a')];
  }

  /** Appends one row state; throws when the file cannot take it (the generation must not go on). */
  append(row: object): void {
    if (this.closed) throw new Error('the ledger journal is closed');
    writeSync(this.fds[this.active], `${JSON.stringify(row)}\n`);
  }

  /** Makes the other (empty) segment active and returns the one whose rows are about to be committed. */
  rotate(): JournalSegment {
    const sealed = this.active;
    this.active = sealed === 0 ? 1 : 0;
    return sealed;
  }

  /** Empties a sealed segment once its rows are committed. */
  discard(segment: JournalSegment): void {
    if (!this.closed) ftruncateSync(this.fds[segment], 0);
  }

  /** What both segments hold: at start-up, what the previous run journaled and may not have committed. */
  readAll<Row>(): Row[] {
    return readRowJournal<Row>(this.paths);
  }

  /** Empties both segments, once a replay has committed their rows. */
  clear(): void {
    this.discard(0);
    this.discard(1);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds) closeSync(fd);
  }
}

export type JournalSegment = 0 | 1;

/**
 * The rows a journal holds (its segment files beside `basePath`, or the files given), oldest first
 * within each segment. A line that does not parse is the last one of a write the kill cut short: it
 * was never acknowledged, so it is skipped.
 */
export function readRowJournal<Row>(basePath: string | readonly string[]): Row[] {
  const rows: Row[] = [];
  for (const file of typeof basePath === 'string' ? segmentPaths(basePath) : basePath) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        rows.push(JSON.parse(line) as Row);
      } catch {
        // a torn last line
      }
    }
  }
  return rows;
}

function segmentPaths(basePath: string): [string, string] {
  return [`${basePath}-pending-0.jsonl`, `${basePath}-pending-1.jsonl`];
}
