/**
 * vitest globalSetup: gives the test run a directory for its PostgreSQL cluster (started lazily by
 * the first test that asks, see ./shared-cluster.ts), and stops and deletes the cluster when the
 * run ends. In a vitest config: `globalSetup: ['@pep694/store-postgres/testing/global-setup']`
 * (or the path of this file).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresBinDir, stopCluster } from './cluster.js';
import { clusterFile, EXTERNAL_URL_ENV, RUN_DIR_ENV } from './shared-cluster.js';

export function setup(): (() => Promise<void>) | undefined {
  // An existing server, or another project of the same run set the run up already.
  if (process.env[EXTERNAL_URL_ENV] || process.env[RUN_DIR_ENV]) return undefined;
  const runDir = mkdtempSync(join(tmpdir(), 'pep694-pg-run-'));
  // Test processes start after global setup, with this environment.
  process.env[RUN_DIR_ENV] = runDir;
  return async () => {
    try {
      if (existsSync(clusterFile(runDir))) {
        const { dir } = JSON.parse(readFileSync(clusterFile(runDir), 'utf8')) as { dir: string };
        await stopCluster(postgresBinDir(), dir);
      }
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  };
}
