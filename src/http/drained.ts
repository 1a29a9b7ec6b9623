import type { ServerResponse } from 'node:http';

/**
 * Resolves when the client has taken what was written, or has gone. Both listeners are removed
 * whichever fires: a race of two `once` promises left the loser's listeners on the response, one
 * pair per wait, for the whole answer.
 */
export function drained(response: ServerResponse): Promise<void> {
  if (response.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}
