/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  testTimeout: 30000,
  // One test file at a time (--maxWorkers=1), in a worker that is replaced once a file leaves it holding more
  // than this: in one long-lived process the heap reached 700+ MiB by the late files, and the memory-flatness
  // tests (feedback export, streams) then measured the garbage collector of a bloated process, not their code.
  workerIdleMemoryLimit: '512MB',
};
