/**
 * A tus upload lock shared by every node of one PostgreSQL database: the `Locker` of
 * `@tus/server` (structurally: `newLock(id)` → `lock(signal, requestRelease)` / `unlock()`) on
 * PostgreSQL session advisory locks, so that two nodes never append to one tus upload at once.
 * (This package does not depend on @tus/server: the interface is three methods, typed here.)
 *
 * - **One connection per node** holds all of the node's tus locks (an advisory lock belongs to a
 *   session), and LISTENs on a channel. Within the node, a map of holders keeps one request per
 *   upload, as `MemoryLocker` does.
 * - **Handover.** @tus/server asks the holder of a lock to let go (`requestRelease`: a running
 *   PATCH stops after `lockDrainTimeout`, keeping its bytes) when a resuming client's HEAD or PATCH
 *   wants the upload. Across nodes: a node that finds the upload locked elsewhere sends
 *   `NOTIFY <channel>, '<upload id>'`, and the node holding it calls its holder's `requestRelease`;
 *   the requester polls `pg_try_advisory_lock` until it gets the lock or `acquireTimeout` ends
 *   (then it fails as `MemoryLocker` does, and the mechanism answers 503, "resume shortly").
 * - **A lost connection loses the locks** (PostgreSQL releases a session's locks when it ends), so
 *   every holder on this node is asked to let go at once, and the next lock opens a new connection.
 *   For up to `lockDrainTimeout` after such a loss, a PATCH still finishing here and a request on
 *   another node could overlap; the declared digests, checked at completion, catch damage.
 *
 * Keys: `pg_try_advisory_lock(NAMESPACE, hashtext(id))`, the two-integer form, which never
 * collides with the single-bigint keys of migrations and the other locks (./advisory-keys.ts). Two upload ids hashing alike only
 * make their uploads wait for each other now and then.
 */
import pg from 'pg';
import { advisoryUnlock, namespacedKey, tryAdvisoryLock } from './advisory-keys.js';

/** @tus/server's `RequestRelease`. */
export type RequestRelease = () => Promise<void> | void;

/** @tus/server's `Lock`. */
export interface TusLock {
  lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void>;
  unlock(): Promise<void>;
}

export interface PostgresTusLockerOptions {
  /** `postgres://…`: the database the nodes share (the session store's). */
  readonly connectionString: string;
  /** Milliseconds a request waits for an upload's lock before failing (default 30 000, as `MemoryLocker`). */
  readonly acquireTimeout?: number;
  /** Milliseconds between attempts while another request holds the lock (default 50). */
  readonly pollInterval?: number;
  /** The LISTEN/NOTIFY channel of release requests (default `pep694_tus_release`). */
  readonly channel?: string;
}

/** The first key of every tus lock ('tus1'). */
export const TUS_LOCK_NAMESPACE = 0x74757331;

/** What @tus/server answers a lock that could not be had with (its `ERRORS.ERR_LOCK_TIMEOUT`). */
const lockTimeout = () =>
  Object.assign(new Error('failed to acquire lock before timeout'), { status_code: 500, body: 'failed to acquire lock before timeout\n' });

/** How often a waiting request repeats its release request (the holder may have started after the first). */
const RENOTIFY_MS = 1000;

interface Holder {
  readonly release: RequestRelease;
  /** The connection generation the advisory lock was taken on; undefined while being acquired. */
  generation: number | undefined;
}

export class PostgresTusLocker {
  readonly #options: PostgresTusLockerOptions;
  readonly #channel: string;
  readonly #holders = new Map<string, Holder>();
  #client: Promise<pg.Client> | undefined;
  #generation = 0;
  #closed = false;

  constructor(options: PostgresTusLockerOptions) {
    this.#options = options;
    this.#channel = options.channel ?? 'pep694_tus_release';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.#channel)) throw new Error(`not a channel name: ${this.#channel}`);
  }

  newLock(id: string): TusLock {
    return new PostgresTusLock(this, id);
  }

  /** Whether this node holds upload `id`'s lock (tests, diagnostics). */
  holds(id: string): boolean {
    return this.#holders.get(id)?.generation !== undefined;
  }

  /** Closes the connection (its locks go with it); later locks fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    await client?.then((c) => c.end()).catch(() => {});
  }

  /** The node's connection, LISTENing; opened on first use and after a loss. */
  #connection(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new Error('the tus locker is closed'));
    this.#client ??= (async () => {
      const client = new pg.Client({ connectionString: this.#options.connectionString });
      const generation = ++this.#generation;
      const lost = () => this.#lost(client, generation);
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (n) => {
        if (n.channel === this.#channel && n.payload) this.#releaseRequested(n.payload);
      });
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
      return client;
    })().catch((err: unknown) => {
      this.#client = undefined;
      throw err;
    });
    return this.#client;
  }

  /** The connection ended: its advisory locks are gone, so every holder of that generation lets go. */
  #lost(client: pg.Client, generation: number): void {
    if (generation !== this.#generation) return;
    this.#client = undefined;
    client.end().catch(() => {});
    for (const holder of this.#holders.values()) {
      if (holder.generation === generation) void Promise.resolve(holder.release()).catch(() => {});
    }
  }

  /** Another node wants upload `id`: its holder here, if any, is asked to let go. */
  #releaseRequested(id: string): void {
    const holder = this.#holders.get(id);
    if (holder?.generation !== undefined) void Promise.resolve(holder.release()).catch(() => {});
  }

  /** Takes upload `id`'s lock for `release`'s request, waiting (and asking the holder to let go) up to the timeout. */
  async acquire(id: string, signal: AbortSignal, release: RequestRelease): Promise<void> {
    const deadline = Date.now() + (this.#options.acquireTimeout ?? 30_000);
    const poll = this.#options.pollInterval ?? 50;
    let notifiedAt = 0;
    for (;;) {
      if (signal.aborted || Date.now() > deadline) throw lockTimeout();
      const local = this.#holders.get(id);
      if (local) {
        // A request on this node has it (or is taking it): ask it to let go, as MemoryLocker does.
        if (local.generation !== undefined) await Promise.resolve(local.release()).catch(() => {});
      } else {
        const holder: Holder = { release, generation: undefined };
        this.#holders.set(id, holder);
        let got = false;
        try {
          const client = await this.#connection();
          const generation = this.#generation;
          got = await tryAdvisoryLock(client, namespacedKey(TUS_LOCK_NAMESPACE, id));
          if (got) {
            holder.generation = generation;
            return;
          }
          // Held on another node: ask it to let go (again now and then, in case it took the lock after our first ask).
          if (Date.now() - notifiedAt >= RENOTIFY_MS) {
            notifiedAt = Date.now();
            await client.query('SELECT pg_notify($1, $2)', [this.#channel, id]);
          }
        } catch {
          // The database cannot be reached now: try again until the deadline.
        } finally {
          if (!got && this.#holders.get(id) === holder) this.#holders.delete(id);
        }
      }
      await sleep(poll, signal);
    }
  }

  /** Lets go of upload `id`'s lock, if this node holds it. */
  async release(id: string): Promise<void> {
    const holder = this.#holders.get(id);
    if (!holder || holder.generation === undefined) throw new Error('Releasing an unlocked lock!');
    this.#holders.delete(id);
    // A lock of a connection that is gone went with it.
    if (holder.generation !== this.#generation || !this.#client) return;
    try {
      const client = await this.#client;
      await advisoryUnlock(client, namespacedKey(TUS_LOCK_NAMESPACE, id));
    } catch {
      // The connection failed meanwhile: PostgreSQL released the lock with it.
    }
  }
}

class PostgresTusLock implements TusLock {
  constructor(
    private readonly locker: PostgresTusLocker,
    private readonly id: string,
  ) {}

  lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    return this.locker.acquire(this.id, signal, requestRelease);
  }

  unlock(): Promise<void> {
    return this.locker.release(this.id);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
