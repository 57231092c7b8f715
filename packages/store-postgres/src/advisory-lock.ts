/**
 * Named locks across processes on PostgreSQL session-level advisory locks: `tryLock(key)` takes
 * `pg_try_advisory_lock(<64-bit hash of key>)` on a connection of its own pool and keeps that
 * connection out of the pool until the lock is released, so a held lock excludes every other
 * holder, in this process too (a session's advisory locks are re-entrant, one connection per
 * holder makes them exclusive). A process that dies loses its connections and with them its locks:
 * PostgreSQL releases them when the session ends, so another node can take over at once.
 *
 * Generic on purpose (a string key, a release function): the resumable mechanism's `UploadLock`
 * port is this shape; other per-upload locks (tus's Locker) can sit on it.
 */
import pg from 'pg';
import { advisoryUnlock, hashedKey, tryAdvisoryLock } from './advisory-keys.js';

export { advisoryKey } from './advisory-keys.js';

export interface AdvisoryLockOptions {
  /** `postgres://…`, as for the store. */
  readonly connectionString: string;
  /** Most locks held at once by this process (one connection each; default 20). A take beyond it waits for a connection. */
  readonly maxHeld?: number;
  /** Milliseconds to wait for a connection (default 10 000). */
  readonly connectionTimeoutMillis?: number;
}

export class PostgresAdvisoryLocks {
  private readonly pool: pg.Pool;

  constructor(options: AdvisoryLockOptions) {
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxHeld ?? 20,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
      // Idle lock connections do not keep a stopping process alive.
      allowExitOnIdle: true,
    });
    // A connection that breaks while idle must not crash the process (its locks are gone with it).
    this.pool.on('error', () => {});
  }

  /** Takes the lock `key` if no session holds it; the release, or undefined when it is held. */
  async tryLock(key: string): Promise<(() => Promise<void>) | undefined> {
    const id = hashedKey(key);
    const client = await this.pool.connect();
    let got: boolean;
    try {
      got = await tryAdvisoryLock(client, id);
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
    if (!got) {
      client.release();
      return undefined;
    }
    // A held connection is out of the pool, whose error handler no longer covers it: if it breaks
    // (the server restarted, the session was terminated) the lock is gone; that must not crash the process.
    const onError = () => {};
    client.on('error', onError);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      try {
        await advisoryUnlock(client, id);
        client.off('error', onError);
        client.release();
      } catch (err) {
        // Unsure whether it was unlocked: drop the connection, which ends the session and its locks.
        client.release(err as Error);
      }
    };
  }

  /** Closes the connections; it waits for the locks still held to be released. */
  async close(): Promise<void> {
    await this.pool.end();
  }
}
