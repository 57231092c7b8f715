/**
 * The run's store for tests that need more than a test server's own: a store to wrap or share
 * (`testSessionStore`), and the rows a server's store holds (`storedRows`), on SQLite or on
 * PostgreSQL as `PEP694_TEST_STORE` selects (see ./harness.ts), so the same test runs on both.
 */
import { join } from 'node:path';
import type { SessionStore } from '@pep694/core';
import { SqliteSessionStore } from '../storage/sqlite/store.js';
import { testStoreIsPostgres, type TestServer } from './harness.js';

export interface TestSessionStore {
  readonly store: SessionStore;
  /** Another store on the same data, as a second server process (node) would hold; closed by `close`. */
  another(): Promise<SessionStore>;
  /** Closes the stores (and drops the PostgreSQL database). Close the servers using them first. */
  close(): Promise<void>;
}

/**
 * A session store of the run's kind: SQLite in `dir` (its `pep694.sqlite`), or, with
 * `PEP694_TEST_STORE=postgres`, a fresh PostgreSQL database of its own.
 */
export async function testSessionStore(dir: string): Promise<TestSessionStore> {
  if (testStoreIsPostgres()) {
    const { openTestStore } = await import('@pep694/store-postgres/testing');
    const pg = await openTestStore();
    return { store: pg.store, another: () => pg.connect(), close: () => pg.dispose() };
  }
  const file = join(dir, 'pep694.sqlite');
  const opened = [new SqliteSessionStore(file)];
  return {
    store: opened[0]!,
    another: () => {
      const s = new SqliteSessionStore(file);
      opened.push(s);
      return Promise.resolve(s);
    },
    close: async () => void (await Promise.all(opened.map((s) => s.close()))),
  };
}

/**
 * Rows of a test server's store, read behind its back: from the SQLite file in its data
 * directory, or from its PostgreSQL database. `?` placeholders (rewritten as `$1`, `$2`, … for
 * PostgreSQL). Values come as each engine gives them: a JSON column is text on SQLite and a
 * parsed value on PostgreSQL, a time a number on one and a Date on the other.
 */
export async function storedRows<T = Record<string, unknown>>(server: TestServer, sql: string, params: unknown[] = []): Promise<T[]> {
  if (server.databaseUrl) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: server.databaseUrl });
    await client.connect();
    try {
      let n = 0;
      return (
        await client.query(
          sql.replace(/\?/g, () => `$${++n}`),
          params,
        )
      ).rows as T[];
    } finally {
      await client.end();
    }
  }
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(server.dataDir, 'pep694.sqlite'), { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}
