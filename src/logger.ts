import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; credentials are redacted wherever they would appear. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'llmop' },
    redact: {
      paths: ['headers.authorization', 'headers["x-api-key"]', 'apiKey', '*.apiKey', 'authorization'],
      censor: '[redacted]',
    },
  });
}
