/**
 * Which session store the reference index uses: PostgreSQL when `PEP694_DATABASE_URL` is set
 * (`postgres://user:password@host:port/database`, `PEP694_DATABASE_POOL_SIZE` connections per
 * node, default 10; `PEP694_DATABASE_QUEUE_WRITES=0` for a pooler in transaction mode, see
 * `queueWrites` in @pep694/store-postgres), so that any number of nodes can share it; unset, the
 * server's default, SQLite in the data directory.
 */
import type { SessionStore } from '@pep694/core';
import { PostgresSessionStore } from '@pep694/store-postgres';

/** A positive integer from the environment, or undefined when unset; anything else stops the start. */
export function positiveIntEnv(name: string, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < 1)
    throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return n;
}

/** `1` (or unset) or `0` from the environment; anything else stops the start. */
export function flagEnv(name: string, env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw === '1') return true;
  if (raw === '0') return false;
  throw new Error(`${name} must be 0 or 1, not ${JSON.stringify(raw)}`);
}

/** The PostgreSQL store `PEP694_DATABASE_URL` names (migrated), or undefined for the SQLite default. */
export async function sessionStoreFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<SessionStore | undefined> {
  const url = env.PEP694_DATABASE_URL;
  if (url === undefined || url === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('PEP694_DATABASE_URL must be a postgres:// URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`PEP694_DATABASE_URL must be a postgres:// URL, not ${parsed.protocol}//…`);
  }
  const poolSize = positiveIntEnv('PEP694_DATABASE_POOL_SIZE', env);
  // Writes of one session queue on a session-level advisory lock: a pooler in transaction mode
  // (PgBouncer's default) cannot hold one across statements, so those deployments turn it off.
  const queueWrites = flagEnv('PEP694_DATABASE_QUEUE_WRITES', env);
  try {
    return await PostgresSessionStore.open({
      connectionString: url,
      ...(poolSize ? { poolSize } : {}),
      ...(queueWrites !== undefined ? { queueWrites } : {}),
    });
  } catch (err) {
    // Never echo the URL: it may carry a password.
    throw new Error(
      `PEP694_DATABASE_URL: cannot open the PostgreSQL store at ${parsed.host}${parsed.pathname}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** Where the sessions live, for the start banner (without credentials). */
export function describeStore(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = env.PEP694_DATABASE_URL;
  if (!url) return undefined;
  const u = new URL(url);
  return `PostgreSQL ${u.host}${u.pathname}`;
}
