/**
 * SessionStore on embedded SQLite (better-sqlite3): one connection (./connection.ts, with the
 * schema in ./migrations.ts) shared by the store's roles, each in a file of its own: the upload
 * writes (./uploads.ts, ./publishing.ts), the index reads (./index-reads.ts) and housekeeping
 * (./housekeeping.ts). This class only hands each method of the port to its role.
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
    return this.uploads.createSession(...args);
  }
  getSession(...args: Parameters<UploadStore['getSession']>) {
    return this.uploads.getSession(...args);
  }
  countLiveSessions(...args: Parameters<UploadStore['countLiveSessions']>) {
    return this.uploads.countLiveSessions(...args);
  }
  updateSession(...args: Parameters<UploadStore['updateSession']>) {
    return this.uploads.updateSession(...args);
  }
  cancelSession(...args: Parameters<UploadStore['cancelSession']>) {
    return this.uploads.cancelSession(...args);
  }
  publishFile(...args: Parameters<UploadStore['publishFile']>) {
    return this.publishing.publishFile(...args);
  }
  publish(...args: Parameters<UploadStore['publish']>) {
    return this.publishing.publish(...args);
  }
  settlePublish(...args: Parameters<UploadStore['settlePublish']>) {
    return this.publishing.settlePublish(...args);
  }
  createFile(...args: Parameters<UploadStore['createFile']>) {
    return this.uploads.createFile(...args);
  }
  getFile(...args: Parameters<UploadStore['getFile']>) {
    return this.uploads.getFile(...args);
  }
  listFiles(...args: Parameters<UploadStore['listFiles']>) {
    return this.uploads.listFiles(...args);
  }
  updateFile(...args: Parameters<UploadStore['updateFile']>) {
    return this.uploads.updateFile(...args);
  }
  isPublishedProject(...args: Parameters<UploadStore['isPublishedProject']>) {
    return this.uploads.isPublishedProject(...args);
  }
  isFilenameTaken(...args: Parameters<UploadStore['isFilenameTaken']>) {
    return this.uploads.isFilenameTaken(...args);
  }
  findPublishedIdentity(...args: Parameters<UploadStore['findPublishedIdentity']>) {
    return this.uploads.findPublishedIdentity(...args);
  }

  // ---- IndexReadStore (getFile is UploadStore's) ------------------------------------------------

  listPublishedProjects(...args: Parameters<IndexReadStore['listPublishedProjects']>) {
    return this.index.listPublishedProjects(...args);
  }
  listPublishedFiles(...args: Parameters<IndexReadStore['listPublishedFiles']>) {
    return this.index.listPublishedFiles(...args);
  }
  getPublishedFile(...args: Parameters<IndexReadStore['getPublishedFile']>) {
    return this.index.getPublishedFile(...args);
  }
  getSessionByStageToken(...args: Parameters<IndexReadStore['getSessionByStageToken']>) {
    return this.index.getSessionByStageToken(...args);
  }
  listStagedFiles(...args: Parameters<IndexReadStore['listStagedFiles']>) {
    return this.index.listStagedFiles(...args);
  }
  getPublishedCoreMetadata(...args: Parameters<IndexReadStore['getPublishedCoreMetadata']>) {
    return this.index.getPublishedCoreMetadata(...args);
  }
  getAttestations(fileIds: readonly string[]) {
    return this.index.getAttestations(fileIds);
  }
  indexVersion(...args: Parameters<IndexReadStore['indexVersion']>) {
    return this.index.indexVersion(...args);
  }

  // ---- HousekeepingStore ------------------------------------------------------------------------

  listExpiredSessions(...args: Parameters<HousekeepingStore['listExpiredSessions']>) {
    return this.housekeeping.listExpiredSessions(...args);
  }
  listExpiredFiles(...args: Parameters<HousekeepingStore['listExpiredFiles']>) {
    return this.housekeeping.listExpiredFiles(...args);
  }
  listProcessing(...args: Parameters<HousekeepingStore['listProcessing']>) {
    return this.housekeeping.listProcessing(...args);
  }
  forgetEndedSessions(...args: Parameters<HousekeepingStore['forgetEndedSessions']>) {
    return this.housekeeping.forgetEndedSessions(...args);
  }
  isBlobReferenced(...args: Parameters<HousekeepingStore['isBlobReferenced']>) {
    return this.housekeeping.isBlobReferenced(...args);
  }

  countSessionsByStatus(...args: Parameters<NonNullable<SessionStore['countSessionsByStatus']>>) {
    return this.housekeeping.countSessionsByStatus(...args);
  }

  /** Readiness: the connection is open and answers a query (rejects once `close` ran). */
  async ping(): Promise<void> {
    this.connection.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.connection.close();
  }
}
