/**
 * One connection to the store's SQLite file: opened with the pragmas the store relies on and
 * migrated, its statements prepared once, and every write step in one transaction.
 *
 * The uniqueness rules of PEP 694 are constraints in the schema (./migrations.ts), so the database
 * settles races, including between processes sharing the file. Every write step is one
 * transaction, started with BEGIN IMMEDIATE: it takes the write lock up front, so a
 * read-check-write sequence cannot be invalidated by another connection's commit (a deferred
 * transaction would fail with SQLITE_BUSY_SNAPSHOT when upgrading to write instead of waiting on
 * busy_timeout). Should a constraint still fire (a check this code missed), the whole step is
 * retried once, and the retry sees the winner and returns the proper result kind ('exists',
 * 'conflict', ...).
 */
import Database from 'better-sqlite3';
import type { FileUploadRecord, PublishingSessionRecord } from '@pep694/core';
import { migrate, type MigrationOptions } from './migrations.js';
import { fileFromRow, sessionFromRow, type FileRow, type SessionRow } from './rows.js';
import { fdatasyncWal, WalSync, type WalSyncer } from './wal-sync.js';

/** Options of the store: what opening (and migrating) its file needs. */
export interface SqliteSessionStoreOptions extends MigrationOptions {
  /**
   * How the write-ahead log is made durable (./wal-sync.ts); by default an fdatasync of the
   * `-wal` file on the thread pool. Tests replace it to watch or hold the syncs.
   */
  readonly syncWal?: WalSyncer;
}

/**
 * Runs `step`, again after a short pause while it fails with SQLITE_BUSY, for up to `ms`.
 * Switching a new database file to WAL needs its exclusive lock, and when two connections opening
 * it both hold its shared lock and want more, SQLite answers one of them BUSY at once, without
 * the busy handler (waiting could deadlock): two processes starting on one new file at the same
 * moment (the bench's index section) failed 1 time in 300, two threads released together 28 times
 * in 500. The pause is synchronous, as the constructor is.
 */
export function againWhileBusy<T>(step: () => T, ms: number): T {
  const deadline = Date.now() + ms;
  for (let pause = 1; ; pause = Math.min(2 * pause, 50)) {
    try {
      return step();
    } catch (err) {
      if (!(err instanceof Database.SqliteError && err.code === 'SQLITE_BUSY') || Date.now() >= deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
    }
  }
}

const isUniqueViolation = (err: unknown) =>
  err instanceof Database.SqliteError && (err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY');

export class SqliteConnection {
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();
  /** The group commit: `await wal.durable()` before acting on anything read or written. */
  readonly wal: WalSync;
  /** Closes the descriptor the default syncer keeps on the WAL (before the connection closes). */
  readonly closeSyncer: () => Promise<void>;

  constructor(filename: string, opts: SqliteSessionStoreOptions = {}) {
    this.db = new Database(filename);
    let wal: boolean;
    try {
      // busy_timeout first, so even switching to WAL waits for another process instead of failing.
      this.db.pragma('busy_timeout = 5000');
      const journal = againWhileBusy(() => this.db.pragma('journal_mode = WAL', { simple: true }), 5000);
      // The migrations commit with an fsync each (FULL); after them, commits leave the fsync to
      // the group commit of ./wal-sync.ts, which the store awaits before any call resolves.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      migrate(this.db, opts);
      // An in-memory database has no WAL (journal_mode stays 'memory') and nothing to sync.
      wal = journal === 'wal';
      if (wal) this.db.pragma('synchronous = NORMAL');
    } catch (err) {
      this.db.close();
      throw err;
    }
    const changes = this.db.prepare('SELECT total_changes()').pluck();
    const own = wal && !opts.syncWal ? fdatasyncWal(filename) : undefined;
    this.closeSyncer = own?.close ?? (async () => {});
    this.wal = new WalSync(() => changes.get() as number, wal ? (opts.syncWal ?? own!) : async () => {});
  }

  /** The statement for `sql`, prepared once per connection. */
  prepared(sql: string): Database.Statement<unknown[], unknown> {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** One atomic write step (see the module comment for the lock and the retry). */
  inWriteTransaction<T>(step: () => T): T {
    try {
      return this.db.transaction(step).immediate();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      return this.db.transaction(step).immediate();
    }
  }

  /** The session as stored; shared by the roles that answer with sessions. */
  readSession(id: string): PublishingSessionRecord | undefined {
    const row = this.prepared('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return row && sessionFromRow(row);
  }

  /** The file as stored, with its metadata bytes; shared by the roles that read one file. */
  readFile(id: string): FileUploadRecord | undefined {
    const row = this.prepared('SELECT * FROM files WHERE id = ?').get(id) as FileRow | undefined;
    return row && fileFromRow(row);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
