/**
 * The lock port of the resumable mechanism: what keeps two appends to one upload apart when the
 * upload directory is shared by several server processes (`shared: true`). In one process the
 * running append on the upload in memory does it; across processes only a lock they all see can
 * (the draft allows one transfer per upload resource at a time). `@pep694/store-postgres` has one
 * on PostgreSQL advisory locks (`PostgresAdvisoryLocks`).
 */

/** Gives a lock back. */
export type ReleaseLock = () => Promise<void>;

export interface UploadLock {
  /**
   * Takes the lock named `key` when nobody holds it (not even this process: it is not
   * re-entrant) and returns how to release it; undefined when it is held. A holder that dies
   * must lose its locks (PostgreSQL drops a session's advisory locks with its connection).
   */
  tryLock(key: string): Promise<ReleaseLock | undefined>;
}

/** Polls `lock.tryLock(key)` for up to `waitMs`; undefined when it stayed held. */
export async function lockWithin(lock: UploadLock, key: string, waitMs: number, pollMs = 50): Promise<ReleaseLock | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = await lock.tryLock(key);
    if (release || Date.now() >= deadline) return release;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, deadline - Date.now()))));
  }
}

/** A lock of one process (tests, and a reminder of the contract): useless across processes. */
export class ProcessLocks implements UploadLock {
  private readonly held = new Set<string>();

  async tryLock(key: string): Promise<ReleaseLock | undefined> {
    if (this.held.has(key)) return undefined;
    this.held.add(key);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.held.delete(key);
    };
  }
}

/** The locks of one mechanism's uploads: `<prefix>:<file id>`; without a lock port every take succeeds (one process, memory decides). */
export class UploadGuard {
  constructor(
    private readonly lock: UploadLock | undefined,
    private readonly prefix: string,
  ) {}

  /** The upload's lock, waiting up to `waitMs` for a holder to finish; undefined when it is still held elsewhere. */
  async take(fileId: string, waitMs: number): Promise<ReleaseLock | undefined> {
    if (!this.lock) return noRelease;
    const key = `${this.prefix}:${fileId}`;
    return waitMs > 0 ? lockWithin(this.lock, key, waitMs) : this.lock.tryLock(key);
  }
}

const noRelease: ReleaseLock = async () => {};
