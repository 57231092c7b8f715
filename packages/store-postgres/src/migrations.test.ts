/**
 * Versioned migrations: nodes starting at once against a new database migrate it once (the
 * advisory lock), each version is recorded, a second start has nothing to do, and a database newer
 * than the code is refused.
 */
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { MIGRATIONS } from './migrations.js';
import { PostgresSessionStore } from './store.js';
import { createTestDatabase, type TestDatabase } from './testing/index.js';

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

async function appliedVersions(url: string): Promise<number[]> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    return (await pool.query<{ version: number }>('SELECT version FROM pep694_schema_migrations ORDER BY version')).rows.map(
      (r) => r.version,
    );
  } finally {
    await pool.end();
  }
}

it('six nodes opening a new database at once migrate it once, and every one of them works on it', async () => {
  db = await createTestDatabase({ unmigrated: true });
  const stores = await Promise.all(Array.from({ length: 6 }, () => PostgresSessionStore.open(db!.url)));
  try {
    expect(await appliedVersions(db.url)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    for (const s of stores) expect(await s.listPublishedProjects()).toEqual([]);
    // A restart finds nothing left to do.
    const again = await PostgresSessionStore.open(db.url);
    await again.close();
    expect(await appliedVersions(db.url)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});

it('a database migrated by newer code is refused, not written to', async () => {
  db = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  await pool.query('INSERT INTO pep694_schema_migrations (version) VALUES ($1)', [MIGRATIONS.length + 1]);
  await pool.end();
  await expect(PostgresSessionStore.open(db.url)).rejects.toThrow(
    `database schema version ${MIGRATIONS.length + 1} is newer than this code (${MIGRATIONS.length})`,
  );
});
