/**
 * The SQLite store's housekeeping role (HousekeepingStore): what the reaper and crash recovery
 * list, and forgetting ended sessions.
 */
import type { FileUploadRecord, HousekeepingStore, PublishingSessionRecord, PublishingSessionStatus } from '@pep694/core';
import type { SqliteConnection } from './connection.js';
import { fileFromRow, sessionFromRow, type FileRow, type SessionRow } from './rows.js';
import { EDITABLE_SESSIONS_SQL, EXPIRING_SESSIONS_SQL, TERMINAL_SESSIONS_SQL } from './state-lists.js';

export class SqliteHousekeeping implements HousekeepingStore {
  constructor(private readonly connection: SqliteConnection) {}

  async listExpiredSessions(now: Date): Promise<readonly PublishingSessionRecord[]> {
    const rows = this.connection
      .prepared(`SELECT * FROM sessions WHERE status IN ${EXPIRING_SESSIONS_SQL} AND expires_at <= ? ORDER BY expires_at, id`)
      .all(now.getTime()) as SessionRow[];
    return rows.map(sessionFromRow);
  }

  async listExpiredFiles(now: Date): Promise<readonly FileUploadRecord[]> {
    const rows = this.connection
      .prepared(
        `SELECT f.* FROM files f JOIN sessions s ON s.id = f.session_id
       WHERE f.status = 'pending' AND f.expires_at <= ? AND s.status IN ${EDITABLE_SESSIONS_SQL} ORDER BY f.expires_at, f.id`,
      )
      .all(now.getTime()) as FileRow[];
    return rows.map(fileFromRow);
  }

  async listProcessing(): Promise<{ readonly sessions: readonly PublishingSessionRecord[]; readonly files: readonly FileUploadRecord[] }> {
    const sessions = this.connection
      .prepared(`SELECT * FROM sessions WHERE status = 'processing' ORDER BY created_at, id`)
      .all() as SessionRow[];
    const files = this.connection.prepared(`SELECT * FROM files WHERE status = 'processing' ORDER BY created_at, id`).all() as FileRow[];
    return { sessions: sessions.map(sessionFromRow), files: files.map(fileFromRow) };
  }

  async forgetEndedSessions(before: Date): Promise<number> {
    return this.connection.inWriteTransaction(() => {
      const ended = `SELECT id FROM sessions WHERE status IN ${TERMINAL_SESSIONS_SQL} AND ended_at < ?`;
      const t = before.getTime();
      // Explicit rather than relying on ON DELETE CASCADE; published_files are kept.
      this.connection.prepared(`DELETE FROM filename_claims WHERE session_id IN (${ended})`).run(t);
      this.connection.prepared(`DELETE FROM files WHERE session_id IN (${ended})`).run(t);
      return this.connection.prepared(`DELETE FROM sessions WHERE id IN (${ended})`).run(t).changes;
    });
  }

  /** For the sessions gauge of /metrics: one pass over the sessions table (terminal rows last until forgotten). */
  async countSessionsByStatus(): Promise<Partial<Record<PublishingSessionStatus, number>>> {
    const rows = this.connection.prepared('SELECT status, count(*) AS n FROM sessions GROUP BY status').all() as {
      status: PublishingSessionStatus;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async isBlobReferenced(key: string): Promise<boolean> {
    return (
      this.connection
        .prepared(
          `SELECT CASE WHEN EXISTS (SELECT 1 FROM files WHERE blob_key = ?)
           OR EXISTS (SELECT 1 FROM published_files WHERE blob_key = ?) THEN 1 ELSE 0 END`,
        )
        .pluck()
        .get(key, key) === 1
    );
  }
}
