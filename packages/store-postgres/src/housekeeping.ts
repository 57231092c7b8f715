/**
 * The PostgreSQL store's housekeeping role (HousekeepingStore): what the reaper and crash recovery
 * list, forgetting ended sessions, and the leases that let several nodes share that work.
 */
import type { FileUploadRecord, HousekeepingStore, PublishingSessionRecord, PublishingSessionStatus } from '@pep694/core';
import type { PostgresConnection } from './connection.js';
import { fileFromRow, sessionFromRow, type FileRow, type SessionRow } from './rows.js';
import { EDITABLE_SESSIONS_SQL, EXPIRING_SESSIONS_SQL, TERMINAL_SESSIONS_SQL } from './sql.js';

/**
 * Sessions forgotten per transaction, at READ COMMITTED (`inReadCommittedTransaction`: the rows
 * it deletes no transaction changes any more). As one SERIALIZABLE transaction, 1 500 sessions
 * past the retention (a reaper pass after days without one, or a shorter retention) never
 * committed while two clients created sessions and files: its reads conflicted with their writes,
 * and it failed after 60 attempts (7 s; 20 000 sessions: 10 s), at every pass. Now 20 000 take
 * 1.1 s beside the same two clients (measured once; ./forget.test.ts runs 1 507 of them).
 */
export const FORGET_BATCH = 500;

export class PostgresHousekeeping implements Required<HousekeepingStore> {
  constructor(private readonly connection: PostgresConnection) {}

  async listExpiredSessions(now: Date): Promise<readonly PublishingSessionRecord[]> {
    const rows = await this.connection.rows<SessionRow>(
      `SELECT * FROM sessions WHERE status IN ${EXPIRING_SESSIONS_SQL} AND expires_at <= $1 ORDER BY expires_at, id`,
      [now],
    );
    return rows.map(sessionFromRow);
  }

  async listExpiredFiles(now: Date): Promise<readonly FileUploadRecord[]> {
    const rows = await this.connection.rows<FileRow>(
      `SELECT f.* FROM files f JOIN sessions s ON s.id = f.session_id
       WHERE f.status = 'pending' AND f.expires_at <= $1 AND s.status IN ${EDITABLE_SESSIONS_SQL} ORDER BY f.expires_at, f.id`,
      [now],
    );
    return rows.map(fileFromRow);
  }

  async listProcessing(): Promise<{ readonly sessions: readonly PublishingSessionRecord[]; readonly files: readonly FileUploadRecord[] }> {
    // Two statements, one snapshot.
    return this.connection.inReadSnapshot(async (c) => {
      const sessions = await this.connection.rows<SessionRow>(
        `SELECT * FROM sessions WHERE status = 'processing' ORDER BY created_at, id`,
        [],
        c,
      );
      const files = await this.connection.rows<FileRow>(`SELECT * FROM files WHERE status = 'processing' ORDER BY created_at, id`, [], c);
      return { sessions: sessions.map(sessionFromRow), files: files.map(fileFromRow) };
    });
  }

  async forgetEndedSessions(before: Date): Promise<number> {
    let forgotten = 0;
    for (;;) {
      const { found, deleted } = await this.connection.inReadCommittedTransaction(async (c) => {
        const ids = (
          await c.query<{ id: string }>(`SELECT id FROM sessions WHERE status IN ${TERMINAL_SESSIONS_SQL} AND ended_at < $1 LIMIT $2`, [
            before,
            FORGET_BATCH,
          ])
        ).rows.map((r) => r.id);
        if (ids.length === 0) return { found: 0, deleted: 0 };
        // Explicit rather than relying on ON DELETE CASCADE; published_files are kept.
        await c.query('DELETE FROM filename_claims WHERE session_id = ANY($1::text[])', [ids]);
        await c.query('DELETE FROM files WHERE session_id = ANY($1::text[])', [ids]);
        // Counted as deleted: at READ COMMITTED another node's pass could have taken some first.
        const gone = await c.query('DELETE FROM sessions WHERE id = ANY($1::text[])', [ids]);
        return { found: ids.length, deleted: gone.rowCount ?? 0 };
      });
      forgotten += deleted;
      if (found < FORGET_BATCH) return forgotten;
    }
  }

  /** For the sessions gauge of /metrics: one pass over the sessions table (terminal rows last until forgotten). */
  async countSessionsByStatus(): Promise<Partial<Record<PublishingSessionStatus, number>>> {
    const rows = await this.connection.rows<{ status: PublishingSessionStatus; n: number }>(
      'SELECT status, COUNT(*)::bigint AS n FROM sessions GROUP BY status',
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async isBlobReferenced(key: string): Promise<boolean> {
    const row = await this.connection.row<{ referenced: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM files WHERE blob_key = $1) OR EXISTS (SELECT 1 FROM published_files WHERE blob_key = $1) AS referenced`,
      [key],
    );
    return row?.referenced === true;
  }

  /**
   * One statement: inserts the lease, or takes over a row that expired or is already `owner`'s.
   * A row held by another owner and unexpired is left as it is, and the statement returns no row.
   * Expiry is by the database's clock (`clock_timestamp()`), the one every node shares.
   */
  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const row = await this.connection.row(
      `INSERT INTO work_leases AS l (key, owner, expires_at) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()
       RETURNING 1`,
      [key, owner, ttlMs],
    );
    return row !== undefined;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.connection.rows('DELETE FROM work_leases WHERE key = $1 AND owner = $2', [key, owner]);
  }
}
