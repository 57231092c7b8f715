/**
 * A fresh database per test, cloned from a template that holds the migrated schema:
 * `CREATE DATABASE … TEMPLATE …` copies a few hundred kilobytes, far faster than migrating anew.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, MIGRATIONS } from '../migrations.js';
import { sharedTestCluster } from './shared-cluster.js';

export interface TestDatabase {
  /** `postgres://…/<name>`: the database, migrated and empty. */
  readonly url: string;
  readonly name: string;
  /** Drops the database, closing any connection still open on it. */
  drop(): Promise<void>;
}

/** The template's name carries a digest of the migrations, so that a changed schema never reuses a stale one. */
const TEMPLATE = `pep694_template_${createHash('sha256').update(MIGRATIONS.join('\n')).digest('hex').slice(0, 12)}`;
/** An arbitrary advisory lock key under which one process creates the template. */
const TEMPLATE_LOCK_KEY = 0x70657054;

let admin: Promise<pg.Pool> | undefined;
let templateReady: Promise<void> | undefined;

/** A URL on the same server as `url`, naming database `name`. */
export function databaseUrl(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.href;
}

function adminPool(): Promise<pg.Pool> {
  admin ??= sharedTestCluster().then(({ url }) => {
    const pool = new pg.Pool({ connectionString: url, max: 4, allowExitOnIdle: true });
    pool.on('error', () => {});
    return pool;
  });
  return admin;
}

/** Creates and migrates the template once per server, whichever test process gets there first. */
function ensureTemplate(): Promise<void> {
  templateReady ??= (async () => {
    const pool = await adminPool();
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE]);
      if (exists.rowCount === 0) {
        const building = `${TEMPLATE}_building`;
        await client.query(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`);
        await client.query(`CREATE DATABASE "${building}"`);
        const url = databaseUrl((await sharedTestCluster()).url, building);
        const migrating = new pg.Pool({ connectionString: url, max: 1 });
        try {
          await migrate(migrating);
        } finally {
          await migrating.end();
        }
        // Renamed once complete: a template that exists is a migrated one.
        await client.query(`ALTER DATABASE "${building}" RENAME TO "${TEMPLATE}"`);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]).catch(() => {});
      client.release();
    }
  })();
  return templateReady;
}

/**
 * A new, migrated, empty database on the run's cluster; with `unmigrated`, one without the store's
 * schema (for tests of migrating).
 */
export async function createTestDatabase(opts: { readonly unmigrated?: boolean } = {}): Promise<TestDatabase> {
  const template = opts.unmigrated ? 'template0' : TEMPLATE;
  if (!opts.unmigrated) await ensureTemplate();
  const pool = await adminPool();
  const name = `pep694_test_${randomBytes(8).toString('hex')}`;
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
      break;
    } catch (err) {
      // 55006 object_in_use: another connection on the template for a moment; try again.
      if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
    }
  }
  const url = databaseUrl((await sharedTestCluster()).url, name);
  return {
    url,
    name,
    async drop() {
      // node-postgres' pool.end() resolves before its sockets have closed: a forced drop at once
      // would terminate connections still closing, and their clients would throw 57P01 at nobody.
      // So wait for them (55006: still in use), and force only what a test left open.
      for (let attempt = 1; attempt <= 40; attempt++) {
        try {
          await pool.query(`DROP DATABASE IF EXISTS "${name}"`);
          return;
        } catch (err) {
          if ((err as { code?: string }).code !== '55006') throw err;
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      }
      await pool.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}
