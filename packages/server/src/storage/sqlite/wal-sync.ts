/**
 * Group commit for the SQLite store: commits are made with `synchronous = NORMAL` (no fsync in
 * the commit, so the event loop is never blocked on the disk) and each store call resolves only
 * once the write-ahead log holding everything it wrote or read has been fsynced, by an
 * `fdatasync` on the thread pool that covers every commit made before it started.
 *
 * Why: better-sqlite3 is synchronous, so with `synchronous = FULL` every commit held the whole
 * process for one fsync of the WAL (1 to 5 ms here, more under load): three commits per uploaded
 * file, during which no other request, hash or byte moved. Now concurrent requests share one
 * fsync and wait for it without blocking anyone.
 *
 * What a caller is promised stays what FULL promised: a store call has not resolved (so no answer
 * was sent, no blob deleted on its word) until what it wrote, and what it read, survives a power
 * loss. The WAL is append-only until a checkpoint, and SQLite itself syncs the WAL before every
 * checkpoint and the database after it, so one fdatasync of the WAL makes every earlier commit
 * durable. The difference: another request of this process may read a commit up to one fsync
 * before it is durable, but it cannot act on it before then (its own store call waits too).
 * Other processes sharing the file see commits at once (the reference index runs one process per
 * SQLite file).
 */
import { close, fdatasync, fsync, open } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';

const openFd = promisify(open);
const fdatasyncFd = promisify(fdatasync);
const fsyncFd = promisify(fsync);
const closeFd = promisify(close);

/** Makes the WAL file durable; the default fdatasyncs it (and, the first time, its directory). */
export type WalSyncer = () => Promise<void>;

/** The default syncer, and `close` for the descriptor it keeps. */
export function fdatasyncWal(databasePath: string): WalSyncer & { close(): Promise<void> } {
  const wal = `${resolve(databasePath)}-wal`;
  // Kept open between syncs (callback fs, no FileHandle: each sync is one thread-pool call).
  // SQLite neither deletes nor replaces the WAL while a connection to the database is open, and
  // the store closes this before its connection.
  let fd: Promise<number> | undefined;
  let directorySynced = false;
  const sync = async () => {
    fd ??= openFd(wal, 'r').catch((err: unknown) => {
      fd = undefined;
      throw err;
    });
    await fdatasyncFd(await fd);
    // The WAL's directory entry, once: a file created since the last directory sync is lost with
    // its directory entry on a power loss, whatever was synced inside it.
    if (!directorySynced) {
      const dir = await openFd(dirname(wal), 'r');
      try {
        await fsyncFd(dir);
      } finally {
        await closeFd(dir);
      }
      directorySynced = true;
    }
  };
  return Object.assign(sync, {
    async close() {
      const open = fd;
      fd = undefined;
      if (open) await closeFd(await open).catch(() => undefined);
    },
  });
}

export class WalSync {
  /** The change count (SQLite's total_changes()) the last finished sync covered. */
  private synced: number;
  private inFlight: Promise<void> | undefined;
  /** Syncs run so far: group commit makes this fewer than the commits. */
  syncs = 0;

  constructor(
    private readonly changes: () => number,
    private readonly sync: WalSyncer,
  ) {
    this.synced = changes();
  }

  /** Resolves once every change made so far on the connection is durable. */
  async durable(): Promise<void> {
    const target = this.changes();
    while (this.synced < target) {
      // One sync at a time: a change made while one runs waits for the next, which then covers
      // every change made meanwhile (the group).
      await (this.inFlight ??= this.syncOnce());
    }
  }

  /** Waits for a sync under way (before closing the connection). */
  async idle(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
  }

  private async syncOnce(): Promise<void> {
    const target = this.changes();
    try {
      await this.sync();
      this.syncs++;
      this.synced = Math.max(this.synced, target);
    } finally {
      this.inFlight = undefined;
    }
  }
}
