/**
 * Jest runs the TypeScript sources through ts-jest in transpile-only mode (`npm run typecheck` and the
 * build type-check everything). ts-jest rather than a native transform: the npm registry this project
 * installs from does not carry every platform binary of the native transforms, and `npm ci` needs a lock
 * file that lists them all.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json', diagnostics: false }],
  },
  testTimeout: 120000,
  // One temporary directory per run, removed at its end (test/helpers/jest-tmpdir-setup.ts says why).
  globalSetup: '<rootDir>/test/helpers/jest-tmpdir-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/jest-tmpdir-teardown.ts',
};
