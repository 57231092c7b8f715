/**
 * `@pep694/store-postgres/testing`: real PostgreSQL for tests. Add the global setup to vitest
 * (`globalSetup: ['@pep694/store-postgres/testing/global-setup']`), then in a test:
 *
 * ```ts
 * const { store, dispose } = await openTestStore();   // a migrated, empty database of its own
 * ```
 *
 * The cluster (Debian's PostgreSQL under /usr/lib/postgresql, or `PEP694_PG_BIN`) starts on the
 * first use in a run, on a free port on 127.0.0.1, and stops when the run ends;
 * `PEP694_TEST_DATABASE_URL` points the tests at an existing server instead.
 */
import { PostgresSessionStore, type PostgresSessionStoreOptions } from '../store.js';
import { createTestDatabase, type TestDatabase } from './databases.js';

export { startTestCluster, stopCluster, postgresBinDir, type TestCluster } from './cluster.js';
export { createTestDatabase, databaseUrl, type TestDatabase } from './databases.js';
export { sharedTestCluster, EXTERNAL_URL_ENV, RUN_DIR_ENV } from './shared-cluster.js';

export interface TestStore {
  readonly store: PostgresSessionStore;
  readonly database: TestDatabase;
  /** Another store (another pool) on the same database, as another node would have; closed by `dispose`. */
  connect(): Promise<PostgresSessionStore>;
  /** Closes the stores and drops the database. */
  dispose(): Promise<void>;
}

/** A PostgresSessionStore on a fresh database of its own (see `createTestDatabase`). */
export async function openTestStore(opts: Omit<PostgresSessionStoreOptions, 'connectionString'> = {}): Promise<TestStore> {
  const database = await createTestDatabase();
  const opened: PostgresSessionStore[] = [];
  const open = async () => {
    const s = await PostgresSessionStore.open({ ...opts, connectionString: database.url, migrate: false });
    opened.push(s);
    return s;
  };
  const store = await open();
  return {
    store,
    database,
    connect: open,
    async dispose() {
      await Promise.all(opened.map((s) => s.close()));
      await database.drop();
    },
  };
}
