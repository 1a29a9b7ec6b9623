import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { BodyTooLargeError, readBody } from '../../src/http/read-body';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const MiB = 1024 * 1024;

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A raw TCP client: what a library that sends its whole body before reading does, without retries or tricks. */
class RawClient {
  private readonly socket: net.Socket;
  private received = Buffer.alloc(0);
  private failure: Error | undefined;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get error(): Error | undefined {
    return this.failure;
  }

  /** Resolves once the kernel took the bytes; rejects if the connection broke first. */
  write(data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure || this.closed) {
        reject(this.failure ?? new Error('the connection is closed'));
        return;
      }
      this.socket.write(data, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Writes `total` bytes in 1 MiB pieces; returns how many the connection took before it closed. */
  async writeFiller(total: number): Promise<number> {
    const piece = Buffer.alloc(MiB, 'a');
    let written = 0;
    while (written < total) {
      const size = Math.min(piece.length, total - written);
      try {
        await this.write(size === piece.length ? piece : piece.subarray(0, size));
      } catch {
        return written;
      }
      written += size;
    }
    return written;
  }

  /** The next complete HTTP answer (Content-Length framed). */
  async readAnswer(): Promise<RawAnswer> {
    for (;;) {
      const answer = this.takeAnswer();
      if (answer) return answer;
      if (this.failure) throw this.failure;
      if (this.closed) throw new Error(`the connection closed before a whole answer: ${JSON.stringify(this.received.toString('utf8'))}`);
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  whenClosed(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.closed) resolve();
        else this.waiters.add(check);
      };
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private takeAnswer(): RawAnswer | undefined {
    const headEnd = this.received.indexOf('\r\n\r\n');
    if (headEnd === -1) return undefined;
    const [statusLine, ...headerLines] = this.received.subarray(0, headEnd).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(
      headerLines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    const length = Number(headers['content-length']);
    if (!Number.isInteger(length)) throw new Error(`an answer without Content-Length: ${statusLine}`);
    if (this.received.length < headEnd + 4 + length) return undefined;
    const body = this.received.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
    this.received = this.received.subarray(headEnd + 4 + length);
    return { status: Number(statusLine!.split(' ')[1]), headers, body };
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }
}

const head = (path: string, headers: Record<string, string | number>): string =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;

/** A JSON body of `size` bytes: a prompt long enough to be over the limit. */
const jsonBodyOf = (size: number): Buffer => {
  const prefix = '{"model_id":"gpt-4o-mini","prompt":"';
  return Buffer.from(`${prefix}${'a'.repeat(size - prefix.length - 2)}"}`);
};

const chunked = (body: Buffer): Buffer => {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += 64 * 1024) {
    const piece = body.subarray(offset, offset + 64 * 1024);
    pieces.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(pieces);
};

describe('a body over the size limit', () => {
  let gateway: RunningGateway;
  let port: number;
  const clients: RawClient[] = [];
  const connect = async (): Promise<RawClient> => {
    const client = await RawClient.connect(port);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    gateway = await startGateway();
    port = Number(new URL(gateway.url).port);
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.destroy();
  });
  afterAll(() => gateway.close());

  const fiveMiB = jsonBodyOf(5 * MiB);
  // More than loopback socket buffers hold, so the server must read it for the client to finish sending.
  const thirtyMiB = jsonBodyOf(30 * MiB);
  const uploads = [
    ['5 MiB with Content-Length', { 'Content-Length': fiveMiB.length }, fiveMiB],
    ['5 MiB chunked', { 'Transfer-Encoding': 'chunked' }, chunked(fiveMiB)],
    ['30 MiB with Content-Length', { 'Content-Length': thirtyMiB.length }, thirtyMiB],
    ['30 MiB chunked', { 'Transfer-Encoding': 'chunked' }, chunked(thirtyMiB)],
  ] as const;

  it.each(uploads)(
    'gets a 413 ErrorResponse on /api/v1/generate when the client sends all %s before reading',
    async (_upload, headers, body) => {
      const client = await connect();
      await client.write(head('/api/v1/generate', headers));
      await client.write(body);
      const answer = await client.readAnswer();
      expect(client.error).toBeUndefined();
      expect(answer.status).toBe(413);
      expect(answer.headers['content-type']).toMatch(/^application\/json\b/);
      expect(JSON.parse(answer.body)).toEqual({
        error: 'payload_too_large',
        message: 'Request body is too large',
        details: expect.stringContaining(String(1024 * 1024)),
        timestamp: expect.any(String),
      });
    },
  );

  it.each(uploads)(
    'gets a 413 payload_too_large GraphQL error on /graphql when the client sends all %s before reading',
    async (_upload, headers, body) => {
      const client = await connect();
      await client.write(head('/graphql', headers));
      await client.write(body);
      const answer = await client.readAnswer();
      expect(client.error).toBeUndefined();
      expect(answer.status).toBe(413);
      expect(answer.headers['content-type']).toMatch(/^application\/json\b/);
      expect(JSON.parse(answer.body)).toEqual({
        errors: [
          {
            message: 'Request body is too large',
            extensions: { code: 'payload_too_large', details: expect.stringContaining(String(1024 * 1024)) },
          },
        ],
      });
    },
  );

  it('leaves the connection usable once the rest of the body is read and thrown away', async () => {
    const client = await connect();
    await client.write(head('/api/v1/generate', { 'Content-Length': fiveMiB.length }));
    await client.write(fiveMiB);
    expect((await client.readAnswer()).status).toBe(413);
    await client.write('GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const health = await client.readAnswer();
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'healthy' });
  });

  it.each(['/api/v1/generate', '/graphql'])(
    'closes the connection on %s once more than 64 MiB have been thrown away',
    async (path) => {
      const client = await connect();
      await client.write(head(path, { 'Content-Length': 200 * MiB }));
      const written = await client.writeFiller(200 * MiB);
      await client.whenClosed();
      expect(written).toBeGreaterThanOrEqual(64 * MiB);
      expect(written).toBeLessThan(200 * MiB);
    },
    30_000,
  );
});

describe('readBody with a short discard time', () => {
  let server: http.Server;
  let port: number;
  const refusals: unknown[] = [];

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      readBody(request, 1024, { maxBytes: 64 * MiB, maxMs: 300 }).then(
        (body) => response.end(`read ${body.length} bytes`),
        (error: unknown) => {
          refusals.push(error);
          response.statusCode = 413;
          response.end('too large');
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers 413 at once, then closes the connection of a client still trickling its body after the discard time', async () => {
    const client = await RawClient.connect(port);
    try {
      await client.write(head('/', { 'Content-Length': 10 * MiB }));
      await client.write(Buffer.alloc(2048, 'a'));
      const answer = await client.readAnswer();
      expect(answer.status).toBe(413);
      expect(refusals.at(-1)).toBeInstanceOf(BodyTooLargeError);
      expect(client.isClosed).toBe(false);
      const started = Date.now();
      const trickle = setInterval(() => void client.write('a').catch(() => undefined), 20);
      try {
        await client.whenClosed();
      } finally {
        clearInterval(trickle);
      }
      const closedAfter = Date.now() - started;
      expect(closedAfter).toBeLessThan(2_000);
    } finally {
      client.destroy();
    }
  });

  it('reads a body within the limit whole', async () => {
    const client = await RawClient.connect(port);
    try {
      await client.write(head('/', { 'Content-Length': 1000 }));
      await client.write(Buffer.alloc(1000, 'b'));
      const answer = await client.readAnswer();
      expect(answer).toMatchObject({ status: 200, body: 'read 1000 bytes' });
    } finally {
      client.destroy();
    }
  });
});
