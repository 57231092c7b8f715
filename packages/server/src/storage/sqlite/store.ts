/**
 * SessionStore on embedded SQLite (better-sqlite3): one connection (./connection.ts, with the
 * schema in ./migrations.ts) shared by the store's roles, each in a file of its own: the upload
 * writes (./uploads.ts, ./publishing.ts), the index reads (./index-reads.ts) and housekeeping
 * (./housekeeping.ts). This class only hands each method of the port to its role, and holds its
 * answer until the write-ahead log is synced (./wal-sync.ts, the group commit).
 *
 * The state lists of the queries come from @pep694/core (./state-lists.ts). File identities
 * (`distributionIdentity` in core) come from the caller with each new file; the migration that
 * fills them in for rows written before they existed computes them with the same function. The SQL avoids SQLite-only syntax outside setup (partial indexes, ON CONFLICT ...
 * DO UPDATE and RETURNING all exist in PostgreSQL); a PostgreSQL port needs SERIALIZABLE or a row
 * lock where this relies on SQLite's single writer.
 */
import type { HousekeepingStore, IndexReadStore, SessionStore, UploadStore } from '@pep694/core';
import { SqliteConnection, type SqliteSessionStoreOptions } from './connection.js';
import { SqliteHousekeeping } from './housekeeping.js';
import { SqliteIndexReads } from './index-reads.js';
import { SqlitePublishing } from './publishing.js';
import { SqliteUploads } from './uploads.js';

export type { SqliteSessionStoreOptions } from './connection.js';

export class SqliteSessionStore implements SessionStore {
  private readonly connection: SqliteConnection;
  private readonly uploads: SqliteUploads;
  private readonly publishing: SqlitePublishing;
  private readonly index: SqliteIndexReads;
  private readonly housekeeping: SqliteHousekeeping;

  constructor(filename: string, opts: SqliteSessionStoreOptions = {}) {
    this.connection = new SqliteConnection(filename, opts);
    this.uploads = new SqliteUploads(this.connection);
    this.publishing = new SqlitePublishing(this.connection);
    this.index = new SqliteIndexReads(this.connection);
    this.housekeeping = new SqliteHousekeeping(this.connection);
  }

  /**
   * Every call of the port resolves only once what it wrote or read is durable (the group commit
   * of ./wal-sync.ts): no answer, and no step taken on its word, before that.
   */
  private async durable<T>(call: Promise<T>): Promise<T> {
    const value = await call;
    await this.connection.wal.durable();
    return value;
  }

  static open(filename: string, opts: SqliteSessionStoreOptions = {}): SqliteSessionStore {
    return new SqliteSessionStore(filename, opts);
  }

  /**
   * SQLite's `PRAGMA integrity_check`: 'ok', or the problems it found, one a line. For operators'
   * health checks and for tests that must show a failure (a full disk, a kill) left the file sound.
   */
  integrityCheck(): string {
    const rows = this.connection.db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('\n');
  }

  // ---- UploadStore ------------------------------------------------------------------------------

  createSession(...args: Parameters<UploadStore['createSession']>) {
    return this.durable(this.uploads.createSession(...args));
  }
  getSession(...args: Parameters<UploadStore['getSession']>) {
    return this.durable(this.uploads.getSession(...args));
  }
  countLiveSessions(...args: Parameters<UploadStore['countLiveSessions']>) {
    return this.durable(this.uploads.countLiveSessions(...args));
  }
  updateSession(...args: Parameters<UploadStore['updateSession']>) {
    return this.durable(this.uploads.updateSession(...args));
  }
  cancelSession(...args: Parameters<UploadStore['cancelSession']>) {
    return this.durable(this.uploads.cancelSession(...args));
  }
  publishFile(...args: Parameters<UploadStore['publishFile']>) {
    return this.durable(this.publishing.publishFile(...args));
  }
  publish(...args: Parameters<UploadStore['publish']>) {
    return this.durable(this.publishing.publish(...args));
  }
  settlePublish(...args: Parameters<UploadStore['settlePublish']>) {
    return this.durable(this.publishing.settlePublish(...args));
  }
  createFile(...args: Parameters<UploadStore['createFile']>) {
    return this.durable(this.uploads.createFile(...args));
  }
  getFile(...args: Parameters<UploadStore['getFile']>) {
    return this.durable(this.uploads.getFile(...args));
  }
  listFiles(...args: Parameters<UploadStore['listFiles']>) {
    return this.durable(this.uploads.listFiles(...args));
  }
  updateFile(...args: Parameters<UploadStore['updateFile']>) {
    return this.durable(this.uploads.updateFile(...args));
  }
  isPublishedProject(...args: Parameters<UploadStore['isPublishedProject']>) {
    return this.durable(this.uploads.isPublishedProject(...args));
  }
  isFilenameTaken(...args: Parameters<UploadStore['isFilenameTaken']>) {
    return this.durable(this.uploads.isFilenameTaken(...args));
  }
  findPublishedIdentity(...args: Parameters<UploadStore['findPublishedIdentity']>) {
    return this.durable(this.uploads.findPublishedIdentity(...args));
  }

  // ---- IndexReadStore (getFile is UploadStore's) ------------------------------------------------

  listPublishedProjects(...args: Parameters<IndexReadStore['listPublishedProjects']>) {
    return this.durable(this.index.listPublishedProjects(...args));
  }
  listPublishedFiles(...args: Parameters<IndexReadStore['listPublishedFiles']>) {
    return this.durable(this.index.listPublishedFiles(...args));
  }
  getPublishedFile(...args: Parameters<IndexReadStore['getPublishedFile']>) {
    return this.durable(this.index.getPublishedFile(...args));
  }
  getSessionByStageToken(...args: Parameters<IndexReadStore['getSessionByStageToken']>) {
    return this.durable(this.index.getSessionByStageToken(...args));
  }
  listStagedFiles(...args: Parameters<IndexReadStore['listStagedFiles']>) {
    return this.durable(this.index.listStagedFiles(...args));
  }
  getPublishedCoreMetadata(...args: Parameters<IndexReadStore['getPublishedCoreMetadata']>) {
    return this.durable(this.index.getPublishedCoreMetadata(...args));
  }
  getAttestations(fileIds: readonly string[]) {
    return this.durable(this.index.getAttestations(fileIds));
  }
  indexVersion(...args: Parameters<IndexReadStore['indexVersion']>) {
    return this.durable(this.index.indexVersion(...args));
  }

  // ---- HousekeepingStore ------------------------------------------------------------------------

  listExpiredSessions(...args: Parameters<HousekeepingStore['listExpiredSessions']>) {
    return this.durable(this.housekeeping.listExpiredSessions(...args));
  }
  listExpiredFiles(...args: Parameters<HousekeepingStore['listExpiredFiles']>) {
    return this.durable(this.housekeeping.listExpiredFiles(...args));
  }
  listProcessing(...args: Parameters<HousekeepingStore['listProcessing']>) {
    return this.durable(this.housekeeping.listProcessing(...args));
  }
  forgetEndedSessions(...args: Parameters<HousekeepingStore['forgetEndedSessions']>) {
    return this.durable(this.housekeeping.forgetEndedSessions(...args));
  }
  isBlobReferenced(...args: Parameters<HousekeepingStore['isBlobReferenced']>) {
    return this.durable(this.housekeeping.isBlobReferenced(...args));
  }

  countSessionsByStatus(...args: Parameters<NonNullable<SessionStore['countSessionsByStatus']>>) {
    return this.durable(this.housekeeping.countSessionsByStatus(...args));
  }

  /** Readiness: the connection is open and answers a query (rejects once `close` ran). */
  async ping(): Promise<void> {
    this.connection.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    await this.connection.wal.idle();
    await this.connection.closeSyncer();
    this.connection.close();
  }
}
