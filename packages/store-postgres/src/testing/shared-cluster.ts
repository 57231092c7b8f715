/**
 * One cluster for a whole test run, shared by every test process (vitest runs test files in
 * several workers): `global-setup.ts` gives the run a directory; the first test that needs
 * PostgreSQL starts the cluster (an exclusive `mkdir` decides who) and records it there, the
 * others wait for that record, and the global teardown stops it. A run whose tests never ask
 * starts no cluster at all.
 *
 * `PEP694_TEST_DATABASE_URL` (a superuser or CREATEDB role on an existing server) skips all of
 * it: tests then create their databases there.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCluster } from './cluster.js';

/** Set by global-setup.ts for the processes of one test run. */
export const RUN_DIR_ENV = 'PEP694_TEST_PG_RUN_DIR';
/** An existing server to use instead of starting one. */
export const EXTERNAL_URL_ENV = 'PEP694_TEST_DATABASE_URL';

export const clusterFile = (runDir: string) => join(runDir, 'cluster.json');
const errorFile = (runDir: string) => join(runDir, 'error.txt');

let shared: Promise<{ readonly url: string }> | undefined;

/** The run's cluster (started on first use): its superuser URL on the maintenance database. */
export function sharedTestCluster(): Promise<{ readonly url: string }> {
  shared ??= locate();
  return shared;
}

async function locate(): Promise<{ readonly url: string }> {
  const external = process.env[EXTERNAL_URL_ENV];
  if (external) return { url: external };
  const runDir = process.env[RUN_DIR_ENV];
  if (!runDir) {
    throw new Error(
      `no PostgreSQL for tests: add '@pep694/store-postgres/testing/global-setup' to vitest's globalSetup (the root vitest.config.ts has it), or set ${EXTERNAL_URL_ENV}`,
    );
  }
  if (!existsSync(clusterFile(runDir))) {
    let starter = true;
    try {
      mkdirSync(join(runDir, 'starting'));
    } catch {
      starter = false;
    }
    if (starter) {
      try {
        const cluster = await startTestCluster();
        const tmp = `${clusterFile(runDir)}.tmp`;
        writeFileSync(tmp, JSON.stringify({ url: cluster.url, dir: cluster.dir }));
        renameSync(tmp, clusterFile(runDir)); // appears whole or not at all
      } catch (err) {
        writeFileSync(errorFile(runDir), String((err as Error).stack ?? err));
        throw err;
      }
    } else await waitFor(runDir);
  }
  return { url: (JSON.parse(readFileSync(clusterFile(runDir), 'utf8')) as { url: string }).url };
}

/** Waits (up to two minutes) for the process that starts the cluster to record it, or its failure. */
async function waitFor(runDir: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!existsSync(clusterFile(runDir))) {
    if (existsSync(errorFile(runDir))) throw new Error(`the test cluster did not start:\n${readFileSync(errorFile(runDir), 'utf8')}`);
    if (Date.now() > deadline) throw new Error('timed out waiting for the test cluster to start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
