/** Thrown when the environment or a file it names does not describe a runnable server; main.ts prints it and exits 1. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
