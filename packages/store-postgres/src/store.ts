/**
 * SessionStore on PostgreSQL (node-postgres): one pool (./connection.ts, with the schema in
 * ./migrations.ts) shared by the store's roles, each in a file of its own: the upload writes
 * (./uploads.ts, ./publishing.ts), the index reads (./index-reads.ts) and housekeeping with the
 * work leases (./housekeeping.ts). This class only hands each method of the port to its role.
 */
import type { HousekeepingStore, IndexReadStore, SessionStore, UploadStore } from '@pep694/core';
import { PostgresConnection, type PostgresConnectionOptions, type WriteStats } from './connection.js';
import { PostgresHousekeeping } from './housekeeping.js';
import { PostgresIndexReads } from './index-reads.js';
import { migrate } from './migrations.js';
import { PostgresPublishing } from './publishing.js';
import { PostgresUploads } from './uploads.js';

export interface PostgresSessionStoreOptions extends PostgresConnectionOptions {
  /** Whether `open` brings the schema up to date first (default true). */
  readonly migrate?: boolean;
}

export class PostgresSessionStore implements SessionStore {
  private readonly uploads: PostgresUploads;
  private readonly publishing: PostgresPublishing;
  private readonly index: PostgresIndexReads;
  private readonly housekeeping: PostgresHousekeeping;

  private constructor(private readonly connection: PostgresConnection) {
    this.uploads = new PostgresUploads(connection);
    this.publishing = new PostgresPublishing(connection);
    this.index = new PostgresIndexReads(connection);
    this.housekeeping = new PostgresHousekeeping(connection);
  }

  /**
   * A store on the database at `connectionString` (or the options), its schema migrated first:
   * safe when several nodes open the same new database at once (see ./migrations.ts).
   */
  static async open(options: string | PostgresSessionStoreOptions): Promise<PostgresSessionStore> {
    const opts = typeof options === 'string' ? { connectionString: options } : options;
    const connection = new PostgresConnection(opts);
    try {
      if (opts.migrate !== false) await migrate(connection.pool);
    } catch (err) {
      await connection.close();
      throw err;
    }
    return new PostgresSessionStore(connection);
  }

  /** Readiness: resolves when the database answers `SELECT 1`, rejects when it cannot (or once `close` ran). */
  async ping(): Promise<void> {
    await this.connection.row('SELECT 1');
  }

  /** For the sessions gauge of /metrics. */
  countSessionsByStatus(...args: Parameters<NonNullable<SessionStore['countSessionsByStatus']>>) {
    return this.housekeeping.countSessionsByStatus(...args);
  }

  /**
   * How many transactions this store (this node's pool) ran, and how many attempts PostgreSQL
   * aborted for a conflict that the store then ran again, by cause: counters since `open`.
   */
  writeStats(): WriteStats {
    return this.connection.writeStats();
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
  acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.housekeeping.acquireLease(key, owner, ttlMs);
  }
  releaseLease(key: string, owner: string): Promise<void> {
    return this.housekeeping.releaseLease(key, owner);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
