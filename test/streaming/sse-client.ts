/**
 * A server-sent-events client for the streaming suites: one real `node:http` request whose answer is
 * read as it arrives, each event (and each comment line) stamped with `performance.now()` when its
 * bytes reached the client. The same clock as the fake upstream's `chunksSentAt` when both run in
 * the test's process.
 */
import * as http from 'node:http';

export interface ReceivedEvent {
  /** `event:` (undefined for an unnamed event). */
  readonly event: string | undefined;
  readonly data: string;
  readonly receivedAt: number;
}

export interface ReceivedComment {
  readonly text: string;
  readonly receivedAt: number;
}

export interface OpenedStream {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** A JSON (error) answer's parsed body; undefined for an event stream. */
  readonly json: unknown;
  /** Events so far, in order: comments are not events. */
  readonly events: ReceivedEvent[];
  /** Comment lines so far (`: keep-alive`), in order. */
  readonly comments: ReceivedComment[];
  /** Everything in arrival order, for asserting where comments fall between events. */
  readonly received: Array<ReceivedEvent | ReceivedComment>;
  /** Resolves once `count` events have arrived (or the answer ended with fewer: then with what there is). */
  eventCount(count: number): Promise<ReceivedEvent[]>;
  /** Resolves with every event once the server ends the answer. */
  readonly ended: Promise<ReceivedEvent[]>;
  /** Closes the connection as a client that goes away; returns `performance.now()` at the moment of closing. */
  abort(): number;
}

/** POSTs `body` as JSON and resolves once the status line and headers arrive. */
export function openStream(url: string, body: unknown, headers: Record<string, string> = {}): Promise<OpenedStream> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const request = http.request(url, {
      method: 'POST',
      // A connection of its own: aborting it must not disturb other requests of the test.
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      const isStream = (response.headers['content-type'] ?? '').startsWith('text/event-stream');
      if (!isStream) {
        let raw = '';
        response.setEncoding('utf8');
        response.on('data', (text: string) => {
          raw += text;
        });
        response.once('end', () => {
          const json = raw ? (JSON.parse(raw) as unknown) : undefined;
          const none: ReceivedEvent[] = [];
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            json,
            events: none,
            comments: [],
            received: [],
            eventCount: async () => none,
            ended: Promise.resolve(none),
            abort: () => performance.now(),
          });
        });
        return;
      }

      const events: ReceivedEvent[] = [];
      const comments: ReceivedComment[] = [];
      const received: Array<ReceivedEvent | ReceivedComment> = [];
      const waiters: Array<{ count: number; resolve: (events: ReceivedEvent[]) => void }> = [];
      let finished = false;
      let buffer = '';
      const settleWaiters = (): void => {
        for (const waiter of [...waiters]) {
          if (finished || events.length >= waiter.count) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(events.slice(0, waiter.count));
          }
        }
      };
      let endedResolve: (events: ReceivedEvent[]) => void = () => undefined;
      const ended = new Promise<ReceivedEvent[]>((done) => {
        endedResolve = done;
      });
      const finish = (): void => {
        if (finished) return;
        finished = true;
        settleWaiters();
        endedResolve(events);
      };
      response.setEncoding('utf8');
      response.on('data', (text: string) => {
        const receivedAt = performance.now();
        buffer += text;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event: string | undefined;
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) {
              const comment = { text: line.slice(1).trim(), receivedAt };
              comments.push(comment);
              received.push(comment);
            } else if (line.startsWith('event:')) event = line.slice('event:'.length).trim();
            else if (line.startsWith('data:')) data.push(line.slice('data:'.length).trimStart());
          }
          if (data.length > 0 || event !== undefined) {
            const parsed = { event, data: data.join('\n'), receivedAt };
            events.push(parsed);
            received.push(parsed);
          }
        }
        settleWaiters();
      });
      response.once('end', finish);
      response.once('close', finish);
      response.once('error', finish);
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        json: undefined,
        events,
        comments,
        received,
        eventCount: (count) =>
          new Promise((done) => {
            waiters.push({ count, resolve: done });
            settleWaiters();
          }),
        ended,
        abort: () => {
          const at = performance.now();
          request.destroy();
          return at;
        },
      });
    });
    request.end(payload);
  });
}

/** The events' `data`, parsed as JSON. */
// `any` by default: tests read deep fields of the varied payloads without declaring each shape.
export const dataOf = <T = any>(event: ReceivedEvent): T => JSON.parse(event.data) as T;

/** The texts of the `delta` events, joined. */
export const joinedDeltas = (events: readonly ReceivedEvent[]): string =>
  events
    .filter((event) => event.event === 'delta')
    .map((event) => dataOf<{ text: string }>(event).text)
    .join('');
