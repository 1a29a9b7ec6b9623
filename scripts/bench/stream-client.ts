/**
 * The stream phase's client: one streamed call over node:http, read as server-sent events as it
 * arrives, timed to its first token and checked to the end. It speaks both dialects the bench meets:
 * OpenAI's (`data: {chat.completion.chunk}` ... `data: [DONE]`, from the fake upstream directly and
 * from LLMOP's /v1) and LLMOP's own (`event: delta` ... `event: done` with the GenerateResponse).
 */
import { type Agent, request as httpRequest } from 'node:http';

export type StreamDialect = 'openai' | 'llmop';

export interface StreamCall {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly dialect: StreamDialect;
  /** The whole text the stream must carry. */
  readonly expectedText: string;
  /** OpenAI dialect: a usage chunk must come (the call asked for `stream_options.include_usage`). */
  readonly expectUsage: boolean;
}

export interface StreamOutcome {
  readonly status: number;
  /** From sending the request to its status line and headers (LLMOP sends them once the upstream has sent its own). */
  readonly headersMs: number | undefined;
  /** From sending the request to the first event that carries text; undefined when none came. */
  readonly firstTokenMs: number | undefined;
  readonly totalMs: number;
  /** Events that carried text. */
  readonly deltas: number;
  /** What went wrong: an answer other than 200, an `error` event, a missing end, a text that differs. */
  readonly problem: string | undefined;
}

interface StreamEvent {
  readonly name: string | undefined;
  readonly data: string;
}

/** Splits `block` (one event, without its blank line) into its name and data; comments are skipped. */
function parseEvent(block: string): StreamEvent | undefined {
  let name: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
  }
  return data.length === 0 && name === undefined ? undefined : { name, data: data.join('\n') };
}

/** Reads one dialect's events: the text so far, whether the stream ended as it should, what went wrong. */
class StreamReader {
  text = '';
  deltas = 0;
  ended = false;
  usageSeen = false;
  /** LLMOP: the `text` of the done event. */
  finalText: string | undefined;
  problem: string | undefined;

  constructor(private readonly dialect: StreamDialect) {}

  /** Returns true when the event carried text. */
  read(event: StreamEvent): boolean {
    if (this.ended) {
      this.problem ??= `an event after the end: ${event.data.slice(0, 200)}`;
      return false;
    }
    return this.dialect === 'openai' ? this.readOpenAI(event) : this.readLlmop(event);
  }

  private readOpenAI(event: StreamEvent): boolean {
    if (event.data === '[DONE]') {
      this.ended = true;
      return false;
    }
    const chunk = JSON.parse(event.data) as {
      error?: unknown;
      choices?: { delta?: { content?: string | null } }[];
      usage?: unknown;
    };
    if (chunk.error !== undefined) {
      this.problem ??= `error chunk: ${event.data.slice(0, 300)}`;
      return false;
    }
    if (chunk.usage) this.usageSeen = true;
    const content = chunk.choices?.[0]?.delta?.content;
    if (!content) return false;
    this.text += content;
    this.deltas += 1;
    return true;
  }

  private readLlmop(event: StreamEvent): boolean {
    if (event.name === 'delta') {
      const { text } = JSON.parse(event.data) as { text: string };
      if (!text) return false;
      this.text += text;
      this.deltas += 1;
      return true;
    }
    if (event.name === 'done') {
      this.finalText = (JSON.parse(event.data) as { text: string }).text;
      this.ended = true;
    } else if (event.name === 'error') {
      this.problem ??= `error event: ${event.data.slice(0, 300)}`;
      this.ended = true;
    }
    return false;
  }

  /** What is wrong with the whole stream, checked once it has ended. */
  verdict(expectedText: string, expectUsage: boolean): string | undefined {
    if (this.problem) return this.problem;
    if (!this.ended) return this.dialect === 'openai' ? 'no data: [DONE]' : 'no done event';
    if (this.dialect === 'openai' && expectUsage && !this.usageSeen) return 'no usage chunk';
    if (this.finalText !== undefined && this.finalText !== this.text) return 'the done event text differs from the deltas';
    if (this.text !== expectedText) return `text ${JSON.stringify(this.text.slice(0, 80))}... differs from the upstream's`;
    return undefined;
  }
}

/** Runs one streamed call to its end (or `timeoutMs`); never rejects: failures are the outcome's `problem`. */
export function runStream(call: StreamCall, agent: Agent, timeoutMs: number): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    let headersMs: number | undefined;
    let firstTokenMs: number | undefined;
    let status = 0;
    const reader = new StreamReader(call.dialect);
    let settled = false;
    const finish = (problem?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        status,
        headersMs,
        firstTokenMs,
        totalMs: performance.now() - startedAt,
        deltas: reader.deltas,
        problem: problem ?? reader.verdict(call.expectedText, call.expectUsage),
      });
    };
    const outgoing = httpRequest(call.url, {
      method: 'POST',
      agent,
      headers: { ...call.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(call.body) },
    });
    const timer = setTimeout(() => {
      finish(`no end within ${timeoutMs} ms`);
      outgoing.destroy();
    }, timeoutMs);
    outgoing.once('error', (error) => finish(`socket: ${error.message}`));
    outgoing.once('response', (incoming) => {
      headersMs = performance.now() - startedAt;
      status = incoming.statusCode ?? 0;
      incoming.setEncoding('utf8');
      let pending = '';
      if (status !== 200) {
        incoming.on('data', (part: string) => (pending += part));
        incoming.once('end', () => finish(`HTTP ${status}: ${pending.slice(0, 300)}`));
        return;
      }
      incoming.on('data', (part: string) => {
        pending += part;
        // Events end with a blank line; a part may hold several, or end in the middle of one.
        for (let end = pending.indexOf('\n\n'); end !== -1; end = pending.indexOf('\n\n')) {
          const event = parseEvent(pending.slice(0, end));
          pending = pending.slice(end + 2);
          if (!event) continue;
          try {
            if (reader.read(event) && firstTokenMs === undefined) firstTokenMs = performance.now() - startedAt;
          } catch (error) {
            reader.problem ??= `unreadable event ${JSON.stringify(event.data.slice(0, 200))}: ${String(error)}`;
          }
        }
      });
      incoming.once('end', () => finish());
      // A connection cut mid-stream ends without 'end': the verdict then says what is missing.
      incoming.once('close', () => finish());
      incoming.once('error', (error) => finish(`response: ${error.message}`));
    });
    outgoing.end(call.body);
  });
}

export interface TimedAnswer {
  readonly status: number;
  readonly totalMs: number;
  readonly body: string;
}

/** One JSON POST on `agent`, timed from sending to the end of the answer; socket errors are status 0. */
export function timePost(url: string, body: string, agent: Agent, timeoutMs: number): Promise<TimedAnswer> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    let settled = false;
    const finish = (status: number, text: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, totalMs: performance.now() - startedAt, body: text });
    };
    const outgoing = httpRequest(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const timer = setTimeout(() => {
      finish(0, `no answer within ${timeoutMs} ms`);
      outgoing.destroy();
    }, timeoutMs);
    outgoing.once('error', (error) => finish(0, `socket: ${error.message}`));
    outgoing.once('response', (incoming) => {
      let text = '';
      incoming.setEncoding('utf8');
      incoming.on('data', (part: string) => (text += part));
      incoming.once('end', () => finish(incoming.statusCode ?? 0, text));
      incoming.once('error', (error) => finish(0, `response: ${error.message}`));
    });
    outgoing.end(body);
  });
}
