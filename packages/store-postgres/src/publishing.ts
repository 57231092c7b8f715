/**
 * The PostgreSQL store's publishing (UploadStore's `publish`, `settlePublish` and `publishFile`): the
 * all-or-nothing check of PEP 694 "Atomic Publication and Conflicts", made on file identities, and
 * the move of a session's files into the published namespace, at once or through filename claims.
 * Two publishes of one identity that run at once conflict in PostgreSQL's serializable snapshot
 * isolation (each read what the other writes); the loser's retry finds the winner's file.
 */
import {
  LIVE_SESSION_STATES,
  type DirectPublishResult,
  type FileUploadStatus,
  type NewDirectPublish,
  type NewNameLimit,
  type PublishingSessionRecord,
  type PublishingSessionStatus,
  type PublishResult,
  type UploadStore,
} from '@pep694/core';
import type { PostgresConnection, Queryable } from './connection.js';
import {
  byteaFromBytes,
  json,
  metadataSha256,
  PUBLISHED_COLUMNS_WITHOUT_METADATA,
  publishedFileFromRow,
  sessionFromRow,
  type ProjectRow,
  type PublishedRow,
  type SessionRow,
} from './rows.js';
import { newNameRefusal } from './uploads.js';

/**
 * Which of a session's files a publish moves into the published namespace, given the placeholder
 * its statement binds the session id to.
 */
type FilesSql = (sessionParam: string) => string;
const NON_CANCELED_FILES: FilesSql = (p) => `SELECT * FROM files WHERE session_id = ${p} AND status <> 'canceled'`;
const CLAIMED_FILES: FilesSql = (p) =>
  `SELECT files.* FROM filename_claims JOIN files ON files.id = filename_claims.file_id WHERE filename_claims.session_id = ${p}`;
const ALL_FILES: FilesSql = (p) => `SELECT * FROM files WHERE session_id = ${p}`;

export class PostgresPublishing implements Pick<UploadStore, 'publish' | 'settlePublish' | 'publishFile'> {
  constructor(private readonly connection: PostgresConnection) {}

  async publish(
    id: string,
    expect: readonly PublishingSessionStatus[],
    at: Date,
    opts: { readonly defer: boolean },
  ): Promise<PublishResult> {
    return this.connection.inWriteTransaction(async (c): Promise<PublishResult> => {
      const session = await this.connection.readSession(id, c);
      if (!session) throw new Error(`unknown publishing session ${id}`);
      if (!expect.includes(session.status)) return { kind: 'session-state', status: session.status };

      const files = await this.connection.rows<{ filename: string; status: FileUploadStatus }>(
        `SELECT filename, status FROM files WHERE session_id = $1 AND status <> 'canceled' ORDER BY filename COLLATE "C"`,
        [id],
        c,
      );
      const unfinished = files.filter((f) => f.status !== 'completed');
      if (unfinished.length > 0) return { kind: 'unfinished', files: unfinished };

      const conflicts = await this.publishConflicts(c, session);
      if (conflicts.length > 0) {
        return {
          kind: 'conflict',
          filenames: conflicts.map((x) => x.filename),
          conflictsWith: Object.fromEntries(conflicts.map((x) => [x.filename, x.holder])),
        };
      }

      // Any claims left from an earlier attempt are replaced by this one.
      await c.query('DELETE FROM filename_claims WHERE session_id = $1', [id]);
      if (opts.defer) {
        await c.query(
          `INSERT INTO filename_claims (project, filename, session_id, file_id, identity)
           SELECT $1, filename, session_id, id, identity FROM files WHERE session_id = $2 AND status <> 'canceled'`,
          [session.project, id],
        );
        const row = await this.connection.row<SessionRow>(`UPDATE sessions SET status = 'processing' WHERE id = $1 RETURNING *`, [id], c);
        return { kind: 'processing', session: sessionFromRow(row!) };
      }
      return { kind: 'published', session: await this.publishFiles(c, session, at, NON_CANCELED_FILES) };
    });
  }

  /**
   * The legacy upload API's publish: one verified file, recorded as a session of its own that is
   * published in the same transaction, through the same `publishFiles` as a session's publish, so
   * the project registration, the published namespace and its unique indexes are the same. A
   * session publish of the same identity running at once conflicts with it in SERIALIZABLE (or on
   * the unique index published_identity), and the retry finds the winner's file.
   */
  async publishFile(input: NewDirectPublish, opts: { readonly newNames?: NewNameLimit } = {}): Promise<DirectPublishResult> {
    return this.connection.inWriteTransaction(async (c): Promise<DirectPublishResult> => {
      const project = await this.connection.row<ProjectRow>('SELECT * FROM projects WHERE name = $1', [input.project], c);
      if (!project?.registered) {
        const holder = project?.reserved_by ? await this.connection.readSession(project.reserved_by, c) : undefined;
        if (holder && LIVE_SESSION_STATES.includes(holder.status) && holder.createdBy !== input.createdBy) {
          return { kind: 'name-reserved', session: holder };
        }
        // The creator's own reservation is no new name; anything else registers one.
        const own = holder !== undefined && LIVE_SESSION_STATES.includes(holder.status);
        const refusal =
          !own && opts.newNames ? await newNameRefusal(this.connection, c, input.createdBy, input.at, opts.newNames) : undefined;
        if (refusal) return refusal;
      }
      const holder = await this.connection.row<{ filename: string }>(
        `SELECT filename FROM published_files WHERE project = $1 AND identity = $2
         UNION ALL SELECT filename FROM filename_claims WHERE project = $1 AND identity = $2 LIMIT 1`,
        [input.project, input.identity],
        c,
      );
      if (holder) return { kind: 'conflict', filename: holder.filename };

      await c.query(
        `INSERT INTO sessions (id, project, display_name, version, release_key, status, stage_token, stage_key,
           created_by, created_at, expires_at, ended_at, reserves_name, notices)
         VALUES ($1, $2, $3, $4, $5, 'published', NULL, NULL, $6, $7, $7, $7, false, '[]')`,
        [input.sessionId, input.project, input.displayName, input.version, input.releaseKey, input.createdBy, input.at],
      );
      await c.query(
        `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at,
           notices, blob_key, attestations, instructions, core_metadata, requires_python, identity, created_by, core_metadata_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, 'completed', $7, $7, '[]', $8, $9, NULL, $10, $11, $12, $13, $14)`,
        [
          input.fileId,
          input.sessionId,
          input.filename,
          input.size,
          json(input.hashes),
          input.mechanism,
          input.at,
          input.blobKey,
          json(input.attestations),
          byteaFromBytes(input.coreMetadata),
          input.requiresPython,
          input.identity,
          input.createdBy,
          input.coreMetadata ? metadataSha256(input.coreMetadata) : null,
        ],
      );
      // Inserted `published` (never live, so a live session of the same release is no obstacle),
      // then its file published as any session's are.
      const session = (await this.connection.readSession(input.sessionId, c))!;
      await this.publishFiles(c, session, input.at, ALL_FILES);
      const row = await this.connection.row<PublishedRow>(
        `SELECT ${PUBLISHED_COLUMNS_WITHOUT_METADATA} FROM published_files WHERE project = $1 AND filename = $2`,
        [input.project, input.filename],
        c,
      );
      return { kind: 'published', file: publishedFileFromRow(row!) };
    });
  }

  /**
   * The session's files whose identity is published in the project, claimed by another session's
   * publish, or shared with another file of the session, each with the file name holding it.
   */
  private async publishConflicts(c: Queryable, session: PublishingSessionRecord): Promise<{ filename: string; holder: string }[]> {
    return this.connection.rows<{ filename: string; holder: string }>(
      `SELECT filename, holder FROM (
         SELECT f.filename AS filename, COALESCE(
           (SELECT p.filename FROM published_files p WHERE p.project = $1 AND p.identity = f.identity),
           (SELECT cl.filename FROM filename_claims cl WHERE cl.project = $1 AND cl.identity = f.identity AND cl.session_id <> $2),
           (SELECT g.filename FROM files g WHERE g.session_id = $2 AND g.status <> 'canceled' AND g.identity = f.identity AND g.id <> f.id LIMIT 1)
         ) AS holder
         FROM files f WHERE f.session_id = $2 AND f.status <> 'canceled') x
       WHERE holder IS NOT NULL ORDER BY filename COLLATE "C"`,
      [session.project, session.id],
      c,
    );
  }

  /**
   * Publishes the files selected by `filesSql` (given the placeholder of the session id) and ends the session
   * as published. The project becomes registered first (a reservation turns permanent, also for an
   * empty session), so published_files' foreign key holds.
   */
  private async publishFiles(
    c: Queryable,
    session: PublishingSessionRecord,
    at: Date,
    filesSql: FilesSql,
  ): Promise<PublishingSessionRecord> {
    const wasRegistered = await this.connection.row('SELECT 1 FROM projects WHERE name = $1 AND registered', [session.project], c);
    await c.query(
      `INSERT INTO projects (name, display_name, registered, reserved_by) VALUES ($1, $2, true, NULL)
       ON CONFLICT (name) DO UPDATE SET registered = true, reserved_by = NULL,
         display_name = CASE WHEN projects.registered THEN projects.display_name ELSE excluded.display_name END`,
      [session.project, session.displayName],
    );
    if (!wasRegistered) {
      // Who registered a new project name, and when (counted by the limit on new names).
      await c.query('UPDATE projects SET registered_by = $1, registered_at = $2 WHERE name = $3', [session.createdBy, at, session.project]);
    }
    await c.query(
      `INSERT INTO published_files (project, filename, display_name, version, size, hashes, blob_key,
         published_at, session_id, file_id, core_metadata, requires_python, identity, core_metadata_sha256)
       SELECT $1, f.filename, $2, $3, f.size, f.hashes, f.blob_key, $4, f.session_id, f.id, f.core_metadata, f.requires_python,
         f.identity, f.core_metadata_sha256
       FROM (${filesSql('$5')}) f`,
      [session.project, session.displayName, session.version, at, session.id],
    );
    // Their attestations outlive the file upload session rows (see MIGRATIONS: published_attestations).
    await c.query(
      `INSERT INTO published_attestations (file_id, attestations)
       SELECT f.id, f.attestations FROM (${filesSql('$1')}) f WHERE f.attestations IS NOT NULL`,
      [session.id],
    );
    await c.query('DELETE FROM filename_claims WHERE session_id = $1', [session.id]);
    // Out of the staged-bytes quota's index (see MIGRATIONS: files.published).
    await c.query('UPDATE files SET published = true WHERE session_id = $1', [session.id]);
    const row = await this.connection.row<SessionRow>(
      `UPDATE sessions SET status = 'published', ended_at = $1 WHERE id = $2 RETURNING *`,
      [at, session.id],
      c,
    );
    return sessionFromRow(row!);
  }

  /**
   * Claimed files whose identity is published all the same (or shared by two claims of the
   * session): impossible while claims and published files are checked against each other in one
   * serializable step, but checked rather than left to break the unique index and leave the
   * session processing.
   */
  private async claimsPublishedMeanwhile(c: Queryable, sessionId: string): Promise<{ filename: string; holder: string }[]> {
    return this.connection.rows<{ filename: string; holder: string }>(
      `SELECT filename, holder FROM (
         SELECT f.filename AS filename, COALESCE(
           (SELECT p.filename FROM published_files p WHERE p.project = cl.project AND p.identity = f.identity),
           (SELECT g.filename FROM filename_claims d JOIN files g ON g.id = d.file_id
            WHERE d.session_id = cl.session_id AND g.identity = f.identity AND g.id <> f.id LIMIT 1)
         ) AS holder
         FROM filename_claims cl JOIN files f ON f.id = cl.file_id WHERE cl.session_id = $1) x
       WHERE holder IS NOT NULL ORDER BY filename COLLATE "C"`,
      [sessionId],
      c,
    );
  }

  async settlePublish(
    id: string,
    at: Date,
    outcome:
      | { readonly ok: true }
      | { readonly ok: false; readonly notices: readonly string[]; readonly fileNotices?: Readonly<Record<string, readonly string[]>> },
  ): Promise<PublishingSessionRecord | undefined> {
    return this.connection.inWriteTransaction(async (c) => {
      const session = await this.connection.readSession(id, c);
      if (session?.status !== 'processing') return undefined;
      let failure = outcome;
      if (failure.ok) {
        const clashes = await this.claimsPublishedMeanwhile(c, id);
        if (clashes.length === 0) return this.publishFiles(c, session, at, CLAIMED_FILES);
        const reasons = clashes.map((x) => `${x.filename} (the same distribution as ${x.holder})`);
        failure = {
          ok: false,
          notices: [`Publishing failed: already published for this release: ${reasons.join(', ')}. Delete these files and publish again.`],
        };
      }
      // Failure releases the filenames (PEP 694 "Atomic Publication and Conflicts").
      await c.query('DELETE FROM filename_claims WHERE session_id = $1', [id]);
      for (const [filename, notices] of Object.entries(failure.fileNotices ?? {})) {
        await c.query(`UPDATE files SET notices = $1 WHERE session_id = $2 AND filename = $3 AND status <> 'canceled'`, [
          json(notices),
          id,
          filename,
        ]);
      }
      const row = await this.connection.row<SessionRow>(
        `UPDATE sessions SET status = 'error', notices = $1 WHERE id = $2 RETURNING *`,
        [json(failure.notices), id],
        c,
      );
      return sessionFromRow(row!);
    });
  }
}
