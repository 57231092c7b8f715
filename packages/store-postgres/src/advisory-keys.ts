/**
 * PostgreSQL advisory locks as this package takes them, in one place: how a name becomes a key,
 * which key spaces the uses live in (so that no two uses can meet), and trying, waiting for and
 * releasing a session-level lock on a connection. The classes that hold locks
 * (PostgresAdvisoryLocks: a connection per held lock; PostgresTusLocker: one connection per node
 * with handover; the store's write queues: the write step's own connection) keep their own
 * policies on top of these calls.
 *
 * Key spaces: PostgreSQL keeps the single-bigint keys apart from the two-integer ones.
 * - Single bigint, fixed constants: migrations (`MIGRATION_LOCK_KEY`), the test kit's template.
 * - Single bigint, a hash of a name (`advisoryKey`, the first 8 bytes of SHA-256): the names of
 *   PostgresAdvisoryLocks (`resumable-i8:<id>`, …) and the store's write queues
 *   (`pep694-write-queue:<queue>`); distinct prefixes keep them apart.
 * - Two integers, `(namespace, hashtext(name))`: the tus uploads (`TUS_LOCK_NAMESPACE`).
 *
 * Two names hashing alike only make their holders wait for each other now and then.
 */
import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';

/** A connection a lock is taken on (a pool's client or a client of its own). */
type LockConnection = Pick<ClientBase, 'query'>;

/** The advisory lock key of `key`: the first 8 bytes of its SHA-256, as a signed 64-bit integer (a string, as pg sends int8). */
export function advisoryKey(key: string): string {
  return createHash('sha256').update(key).digest().readBigInt64BE(0).toString();
}

/** A single-bigint key (decimal text). */
export interface BigintKey {
  readonly bigint: string;
}

/** A two-integer key: a namespace and a name that PostgreSQL hashes (`hashtext`). */
export interface NamespacedKey {
  readonly namespace: number;
  readonly name: string;
}

export type LockKey = BigintKey | NamespacedKey;

/** The key of `name` in the hashed single-bigint space. */
export const hashedKey = (name: string): BigintKey => ({ bigint: advisoryKey(name) });

/** The key of `name` in the two-integer space of `namespace`. */
export const namespacedKey = (namespace: number, name: string): NamespacedKey => ({ namespace, name });

/** The arguments of a `pg_*advisory*` call for `key`, and their values. */
function call(key: LockKey): { readonly args: string; readonly values: unknown[] } {
  return 'bigint' in key ? { args: '$1::bigint', values: [key.bigint] } : { args: '$1, hashtext($2)', values: [key.namespace, key.name] };
}

/** `pg_try_advisory_lock`: whether this connection's session now holds `key` (it never waits). */
export async function tryAdvisoryLock(on: LockConnection, key: LockKey): Promise<boolean> {
  const { args, values } = call(key);
  const { rows } = await on.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${args}) AS ok`, values);
  return rows[0]?.ok === true;
}

/** `pg_advisory_unlock`: lets go of `key` held by this connection's session. */
export async function advisoryUnlock(on: LockConnection, key: LockKey): Promise<void> {
  const { args, values } = call(key);
  await on.query(`SELECT pg_advisory_unlock(${args})`, values);
}

/**
 * `pg_advisory_lock`, waiting at most `timeoutMs`: whether this connection's session now holds
 * `key`. One simple-query round trip, `SET lock_timeout; SELECT pg_advisory_lock(…); RESET`: the
 * setting applies to this wait only (a failed statement rolls back the implicit transaction of
 * the three, the `SET` with it). Bigint keys only (a simple query binds no parameters: the key is
 * written into it, and checked to be the integer this code computed, never a request's text).
 */
export async function advisoryLockWithin(on: LockConnection, key: BigintKey, timeoutMs: number): Promise<boolean> {
  if (!/^-?\d+$/.test(key.bigint)) throw new Error(`not an advisory lock key: ${key.bigint}`);
  const ms = Math.max(1, Math.floor(timeoutMs));
  try {
    await on.query(`SET lock_timeout = ${ms}; SELECT pg_advisory_lock(${key.bigint}); RESET lock_timeout`);
    return true;
  } catch (err) {
    // 55P03 lock_not_available: another session held it past the timeout.
    if ((err as { code?: string }).code === '55P03') return false;
    throw err;
  }
}
