import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

const shared = {
  setupFiles: ['./vitest.setup.ts'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
};

/**
 * The suites that hold the storage invariants (no published file lost or corrupted, no partial
 * release visible, nothing orphaned after a sweep), run a second time in the `pg-s3` project with
 * the test servers on PostgreSQL and S3 (s3rver) instead of SQLite and files (issue #17): every
 * server end-to-end file (a glob, so a new one runs on both backends by default), the auth matrix,
 * all five crash suites (the purge one with tus uploads in the bucket, as main.ts keeps them
 * there), and the reference index's origin and process-level hostile suites. Each test server's
 * close checks the invariants there (packages/server/src/testing/harness.ts).
 */
export const PG_S3_SUITES = [
  'packages/server/src/e2e/*.test.ts',
  'examples/reference-index/src/auth-matrix.test.ts',
  'examples/reference-index/src/origin.test.ts',
  'examples/reference-index/src/hostile-process.test.ts',
  'examples/reference-index/src/crash/publish.test.ts',
  'examples/reference-index/src/crash/complete.test.ts',
  'examples/reference-index/src/crash/upload.test.ts',
  'examples/reference-index/src/crash/legacy.test.ts',
  'examples/reference-index/src/crash/purge.test.ts',
];

/**
 * Not run again in `pg-s3`: nodes-postgres builds its own nodes on PostgreSQL (whatever the
 * project) and a blob directory they share, without the harness's store and blob selection; a
 * second run would repeat the first.
 */
const PG_S3_EXCLUDED = ['packages/server/src/e2e/nodes-postgres.test.ts'];

export default defineConfig({
  test: {
    // At least two test files at once. vitest's default (one fewer than the cores) runs them one at
    // a time on a 2-core machine, though most of a file's time goes to the servers, pip and
    // PostgreSQL it drives, in other processes: the whole suite took 18 min there, 11 min 48 s
    // with two (2303 passed, 0 failed).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      {
        test: {
          ...shared,
          name: 'sqlite-files',
          // Only sources: vitest 4 would otherwise also pick up compiled dist/**/*.test.js.
          include: ['packages/*/src/**/*.test.ts', 'plugins/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts'],
          // A PostgreSQL cluster for the tests that ask for one (started on first use, stopped at the
          // end); s3rver only when PEP694_TEST_BLOBS=s3 is set by hand (see the README, "Working on it").
          globalSetup: ['./packages/store-postgres/src/testing/global-setup.ts', './packages/blobs-s3/src/testing-global-setup.ts'],
        },
      },
      {
        test: {
          ...shared,
          name: 'pg-s3',
          include: PG_S3_SUITES,
          exclude: [...configDefaults.exclude, ...PG_S3_EXCLUDED],
          // See PEP694_TEST_STORE and PEP694_TEST_BLOBS in packages/server/src/testing/harness.ts.
          env: {
            PEP694_TEST_STORE: 'postgres',
            PEP694_TEST_BLOBS: 's3',
            // The AWS SDK warns once per process that its 2027 releases need Node 22; CI runs Node 20.
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          },
          globalSetup: ['./packages/store-postgres/src/testing/global-setup.ts', './packages/blobs-s3/src/testing-global-setup.ts'],
        },
      },
    ],
  },
});
