import type { IncomingMessage } from 'node:http';

export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  constructor(readonly limitBytes: number) {
    super(`request body exceeds ${limitBytes} bytes`);
  }
}

/** How much of an oversized body is read and thrown away after the 413, so the client can read its answer. */
export interface DiscardLimits {
  readonly maxBytes: number;
  readonly maxMs: number;
}

/** As nginx does: keep reading what is left (up to 64 MiB or 10 s), then close the connection. */
export const defaultDiscardLimits: DiscardLimits = { maxBytes: 64 * 1024 * 1024, maxMs: 10_000 };

/**
 * Reads the whole body, refusing more than `limitBytes` before buffering it. On refusal the rest of the body
 * is discarded in the background: closing the connection mid-upload would reset it, and a client that sends
 * its whole body before reading would see a broken pipe instead of the 413.
 */
export function readBody(request: IncomingMessage, limitBytes: number, discardLimits = defaultDiscardLimits): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > limitBytes) {
      discardRest(request, discardLimits, 0);
      reject(new BodyTooLargeError(limitBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const stopReading = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) {
        stopReading();
        chunks.length = 0;
        discardRest(request, discardLimits, size);
        reject(new BodyTooLargeError(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stopReading();
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (error: Error): void => {
      stopReading();
      reject(error);
    };
    // The client went away before the end of its body.
    const onClose = (): void => onError(new Error('the request was aborted before its body ended'));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}

function discardRest(request: IncomingMessage, limits: DiscardLimits, alreadyRead: number): void {
  if (request.complete) return;
  let discarded = alreadyRead;
  const finish = (): void => {
    clearTimeout(deadline);
    request.off('data', onData);
    request.off('end', finish);
    request.off('close', finish);
  };
  const close = (): void => {
    finish();
    request.destroy();
  };
  const deadline = setTimeout(close, limits.maxMs);
  deadline.unref();
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded > limits.maxBytes) close();
  };
  request.on('data', onData);
  request.once('end', finish);
  request.once('close', finish);
  // Swallow the reset of a client that gives up; the 413 is already on its way.
  request.on('error', () => undefined);
  request.resume();
}
