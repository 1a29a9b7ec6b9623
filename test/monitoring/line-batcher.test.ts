/**
 * The access log's batching (src/monitoring/line-batcher.ts) on a fake clock: lines wait for their
 * flush and go to the sink together, whole lines and never more than a chunk's bytes; 0 waits for nothing.
 * And the writer around it, when its file cannot be written.
 */
import { createAccessLog } from '../../src/monitoring/access-log';
import { LineBatcher } from '../../src/monitoring/line-batcher';

const line = (n: number, bytes = 10): string => `${String(n).padStart(bytes - 1, '0')}\n`;

describe('LineBatcher', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('hands the lines of one flush interval to the sink as one chunk, once the interval has passed', () => {
    const chunks: string[] = [];
    const batcher = new LineBatcher((chunk) => chunks.push(chunk), 100, 4096);
    batcher.add(line(1));
    jest.advanceTimersByTime(60);
    batcher.add(line(2));
    jest.advanceTimersByTime(39);
    expect(chunks).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(chunks).toEqual([line(1) + line(2)]);
    // The next line starts a new interval.
    batcher.add(line(3));
    jest.advanceTimersByTime(99);
    expect(chunks).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(chunks).toEqual([line(1) + line(2), line(3)]);
  });

  it('hands over whole lines before a chunk would pass its bytes, counting bytes, not characters', () => {
    const chunks: string[] = [];
    const batcher = new LineBatcher((chunk) => chunks.push(chunk), 100, 30);
    for (let n = 1; n <= 7; n += 1) batcher.add(line(n));
    expect(chunks).toEqual([line(1) + line(2) + line(3), line(4) + line(5) + line(6)]);
    // Ten characters, nineteen bytes: 10 + 19 = 29 bytes fit in 30; ten more do not (in characters they would: 30).
    const accented = `${'é'.repeat(9)}\n`;
    batcher.add(accented);
    expect(chunks).toHaveLength(2);
    batcher.add(line(8));
    expect(chunks).toEqual([line(1) + line(2) + line(3), line(4) + line(5) + line(6), line(7) + accented]);
    jest.advanceTimersByTime(100);
    expect(chunks[3]).toBe(line(8));
  });

  it('sends a line longer than a chunk alone', () => {
    const chunks: string[] = [];
    const batcher = new LineBatcher((chunk) => chunks.push(chunk), 100, 30);
    batcher.add(line(1));
    batcher.add(line(2, 50));
    batcher.flush();
    expect(chunks).toEqual([line(1), line(2, 50)]);
  });

  it('flush hands over what waits at once and cancels its timer', () => {
    const chunks: string[] = [];
    const batcher = new LineBatcher((chunk) => chunks.push(chunk), 60_000, 4096);
    batcher.add(line(1));
    batcher.flush();
    expect(chunks).toEqual([line(1)]);
    expect(jest.getTimerCount()).toBe(0);
    batcher.flush();
    expect(chunks).toHaveLength(1);
  });

  it('with 0 hands each line over as it comes, with no timer', () => {
    const chunks: string[] = [];
    const batcher = new LineBatcher((chunk) => chunks.push(chunk), 0, 4096);
    batcher.add(line(1));
    batcher.add(line(2));
    expect(chunks).toEqual([line(1), line(2)]);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('the access log writer', () => {
  const sampleLine = {
    request_id: 'r',
    caller: null,
    method: 'GET',
    route: '/api/v1/health',
    operation: null,
    status: 200,
    aborted: false,
    latency_ms: 1,
    model: null,
    generations: 0,
    input_tokens: 0,
    output_tokens: 0,
    cost_usd: 0,
  };

  it('stops at its first write error and drops the lines still waiting, without throwing from its timer', async () => {
    const troubles: string[] = [];
    const log = createAccessLog({ kind: 'file', path: '/dev/full' }, 20, (message) => troubles.push(message))!;
    // Lines keep coming after the first chunk fails: some wait in the batcher when the error arrives.
    for (let sent = 0; sent < 300; sent += 1) {
      log.write({ ...sampleLine, request_id: `r${sent}` });
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(troubles).toEqual(['the access log cannot be written; no more lines will be logged']);
    await log.close();
  });
});
