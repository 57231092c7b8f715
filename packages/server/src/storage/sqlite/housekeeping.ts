/**
 * The SQLite store's housekeeping role (HousekeepingStore): what the reaper and crash recovery
 * list, and forgetting ended sessions.
 */
import type { FileUploadRecord, HousekeepingStore, PublishingSessionRecord, PublishingSessionStatus } from '@pep694/core';
import type { SqliteConnection } from './connection.js';
import { fileFromRow, sessionFromRow, type FileRow, type SessionRow } from './rows.js';
import { EDITABLE_SESSIONS_SQL, EXPIRING_SESSIONS_SQL, TERMINAL_SESSIONS_SQL } from './state-lists.js';

/**
 * Sessions forgotten per transaction. better-sqlite3 is synchronous, so a transaction holds the
 * event loop until it ends: 20 000 sessions past the retention (a reaper pass after days without
 * one, or a shorter retention) took 0.38 s in one transaction, every request waiting, and 200 000
 * would hold it for seconds, long enough for a liveness probe to give up. In batches: 2.0 s in
 * all, none holding the event loop longer than 75 ms (each commit of a batch this size also runs
 * SQLite's checkpoint).
 */
export const FORGET_BATCH = 500;

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
    let forgotten = 0;
    for (;;) {
      const n = this.connection.inWriteTransaction(() => {
        const ids = this.connection
          .prepared(`SELECT id FROM sessions WHERE status IN ${TERMINAL_SESSIONS_SQL} AND ended_at < ? LIMIT ?`)
          .pluck()
          .all(before.getTime(), FORGET_BATCH) as string[];
        // The batch's ids as one parameter (a JSON array), each row found through its index.
        const batch = JSON.stringify(ids);
        const inBatch = 'IN (SELECT value FROM json_each(?))';
        // Explicit rather than relying on ON DELETE CASCADE; published_files are kept.
        this.connection.prepared(`DELETE FROM filename_claims WHERE session_id ${inBatch}`).run(batch);
        this.connection.prepared(`DELETE FROM files WHERE session_id ${inBatch}`).run(batch);
        this.connection.prepared(`DELETE FROM sessions WHERE id ${inBatch}`).run(batch);
        return ids.length;
      });
      forgotten += n;
      if (n < FORGET_BATCH) return forgotten;
      // Requests in between: the transaction holds the event loop while it runs.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
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
