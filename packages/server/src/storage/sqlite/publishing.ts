/**
 * The SQLite store's publishing (UploadStore's `publish` and `settlePublish`): the all-or-nothing
 * check of PEP 694 "Atomic Publication and Conflicts", made on file identities, and the move of a
 * session's files into the published namespace, at once or through filename claims.
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
import type { SqliteConnection } from './connection.js';
import {
  blobFromBytes,
  metadataSha256,
  publishedFileFromRow,
  sessionFromRow,
  type ProjectRow,
  type PublishedRow,
  type SessionRow,
} from './rows.js';
import { newNameRefusal } from './uploads.js';

export class SqlitePublishing implements Pick<UploadStore, 'publish' | 'settlePublish' | 'publishFile'> {
  constructor(private readonly connection: SqliteConnection) {}

  async publish(
    id: string,
    expect: readonly PublishingSessionStatus[],
    at: Date,
    opts: { readonly defer: boolean },
  ): Promise<PublishResult> {
    return this.connection.inWriteTransaction((): PublishResult => {
      const session = this.connection.readSession(id);
      if (!session) throw new Error(`unknown publishing session ${id}`);
      if (!expect.includes(session.status)) return { kind: 'session-state', status: session.status };

      const files = this.connection
        .prepared(`SELECT filename, status FROM files WHERE session_id = ? AND status <> 'canceled' ORDER BY filename`)
        .all(id) as { filename: string; status: FileUploadStatus }[];
      const unfinished = files.filter((f) => f.status !== 'completed');
      if (unfinished.length > 0) return { kind: 'unfinished', files: unfinished };

      const conflicts = this.publishConflicts(session);
      if (conflicts.length > 0) {
        return {
          kind: 'conflict',
          filenames: conflicts.map((c) => c.filename),
          conflictsWith: Object.fromEntries(conflicts.map((c) => [c.filename, c.holder])),
        };
      }

      // Any claims left from an earlier attempt are replaced by this one.
      this.connection.prepared('DELETE FROM filename_claims WHERE session_id = ?').run(id);
      if (opts.defer) {
        this.connection
          .prepared(
            `INSERT INTO filename_claims (project, filename, session_id, file_id, identity)
           SELECT ?, filename, session_id, id, identity FROM files WHERE session_id = ? AND status <> 'canceled'`,
          )
          .run(session.project, id);
        const row = this.connection.prepared(`UPDATE sessions SET status = 'processing' WHERE id = ? RETURNING *`).get(id) as SessionRow;
        return { kind: 'processing', session: sessionFromRow(row) };
      }
      const published = this.publishFiles(session, at, `SELECT * FROM files WHERE session_id = ? AND status <> 'canceled'`);
      return { kind: 'published', session: published };
    });
  }

  /**
   * The legacy upload API's publish: one verified file, recorded as a session of its own that is
   * published in the same transaction, through the same `publishFiles` as a session's publish, so
   * the project registration, the published namespace and its unique indexes are the same.
   */
  async publishFile(input: NewDirectPublish, opts: { readonly newNames?: NewNameLimit } = {}): Promise<DirectPublishResult> {
    return this.connection.inWriteTransaction((): DirectPublishResult => {
      const project = this.connection.prepared('SELECT * FROM projects WHERE name = ?').get(input.project) as ProjectRow | undefined;
      if (project?.registered !== 1) {
        const holder = project?.reserved_by ? this.connection.readSession(project.reserved_by) : undefined;
        if (holder && LIVE_SESSION_STATES.includes(holder.status) && holder.createdBy !== input.createdBy) {
          return { kind: 'name-reserved', session: holder };
        }
        // The creator's own reservation is no new name; anything else registers one.
        const own = holder !== undefined && LIVE_SESSION_STATES.includes(holder.status);
        const refusal = !own && opts.newNames ? newNameRefusal(this.connection, input.createdBy, input.at, opts.newNames) : undefined;
        if (refusal) return refusal;
      }
      const holder = this.connection
        .prepared(
          `SELECT filename FROM published_files WHERE project = :project AND identity = :identity
           UNION ALL SELECT filename FROM filename_claims WHERE project = :project AND identity = :identity LIMIT 1`,
        )
        .pluck()
        .get({ project: input.project, identity: input.identity }) as string | undefined;
      if (holder !== undefined) return { kind: 'conflict', filename: holder };

      const at = input.at.getTime();
      this.connection
        .prepared(
          `INSERT INTO sessions (id, project, display_name, version, release_key, status, stage_token, stage_key,
           created_by, created_at, expires_at, ended_at, reserves_name, notices)
         VALUES (?, ?, ?, ?, ?, 'published', NULL, NULL, ?, ?, ?, ?, 0, '[]')`,
        )
        .run(input.sessionId, input.project, input.displayName, input.version, input.releaseKey, input.createdBy, at, at, at);
      this.connection
        .prepared(
          `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at,
           notices, blob_key, attestations, instructions, core_metadata, requires_python, identity, created_by, core_metadata_sha256)
         VALUES (?, ?, ?, ?, ?, ?, 'completed', ?, ?, '[]', ?, ?, NULL, ?, ?, ?, ?, ?)`,
        )
        .run(
          input.fileId,
          input.sessionId,
          input.filename,
          input.size,
          JSON.stringify(input.hashes),
          input.mechanism,
          at,
          at,
          input.blobKey,
          input.attestations ? JSON.stringify(input.attestations) : null,
          blobFromBytes(input.coreMetadata),
          input.requiresPython,
          input.identity,
          input.createdBy,
          input.coreMetadata ? metadataSha256(input.coreMetadata) : null,
        );
      // Inserted `published` (never live, so a live session of the same release is no obstacle),
      // then its file published as any session's are.
      const session = this.connection.readSession(input.sessionId)!;
      this.publishFiles(session, input.at, `SELECT * FROM files WHERE session_id = ?`);
      const row = this.connection
        .prepared(`SELECT * FROM published_files WHERE project = ? AND filename = ?`)
        .get(input.project, input.filename) as PublishedRow;
      return { kind: 'published', file: publishedFileFromRow(row) };
    });
  }

  /**
   * The session's files whose identity is published in the project, claimed by another session's
   * publish, or shared with another file of the session (possible only for rows from before file
   * identities), each with the file name holding it: the authoritative check of PEP 694 "Atomic
   * Publication and Conflicts", made on identities so that no second spelling is ever published.
   */
  private publishConflicts(session: PublishingSessionRecord): { filename: string; holder: string }[] {
    return this.connection
      .prepared(
        `SELECT filename, holder FROM (
         SELECT f.filename AS filename, COALESCE(
           (SELECT p.filename FROM published_files p WHERE p.project = :project AND p.identity = f.identity),
           (SELECT c.filename FROM filename_claims c WHERE c.project = :project AND c.identity = f.identity AND c.session_id <> :session),
           (SELECT g.filename FROM files g WHERE g.session_id = :session AND g.status <> 'canceled' AND g.identity = f.identity AND g.id <> f.id)
         ) AS holder
         FROM files f WHERE f.session_id = :session AND f.status <> 'canceled')
       WHERE holder IS NOT NULL ORDER BY filename`,
      )
      .all({ session: session.id, project: session.project }) as { filename: string; holder: string }[];
  }

  /**
   * Publishes the files selected by `filesSql` (one `?`: the session id) and ends the session as
   * published. The project becomes registered first (a reservation turns permanent, also for an
   * empty session: the PEP FAQ's way to register a name), so published_files' foreign key holds.
   */
  private publishFiles(session: PublishingSessionRecord, at: Date, filesSql: string): PublishingSessionRecord {
    const newName = this.connection.prepared('SELECT 1 FROM projects WHERE name = ? AND registered = 1').get(session.project) === undefined;
    this.connection
      .prepared(
        `INSERT INTO projects (name, display_name, registered, reserved_by) VALUES (?, ?, 1, NULL)
       ON CONFLICT (name) DO UPDATE SET registered = 1, reserved_by = NULL,
         display_name = CASE WHEN projects.registered = 1 THEN projects.display_name ELSE excluded.display_name END`,
      )
      .run(session.project, session.displayName);
    if (newName) this.recordRegistration(session, at);
    this.connection
      .prepared(
        `INSERT INTO published_files (project, filename, display_name, version, size, hashes, blob_key,
         published_at, session_id, file_id, core_metadata, requires_python, identity, core_metadata_sha256)
       SELECT ?, f.filename, ?, ?, f.size, f.hashes, f.blob_key, ?, f.session_id, f.id, f.core_metadata, f.requires_python, f.identity, f.core_metadata_sha256
       FROM (${filesSql}) f`,
      )
      .run(session.project, session.displayName, session.version, at.getTime(), session.id);
    // Their attestations outlive the file upload session rows (see MIGRATIONS: published_attestations).
    this.connection
      .prepared(
        `INSERT INTO published_attestations (file_id, attestations)
       SELECT f.id, f.attestations FROM (${filesSql}) f WHERE f.attestations IS NOT NULL`,
      )
      .run(session.id);
    this.connection.prepared('DELETE FROM filename_claims WHERE session_id = ?').run(session.id);
    // Out of the staged-bytes quota's index (see MIGRATIONS: files.published).
    this.connection.prepared('UPDATE files SET published = 1 WHERE session_id = ?').run(session.id);
    const row = this.connection
      .prepared(`UPDATE sessions SET status = 'published', ended_at = ? WHERE id = ? RETURNING *`)
      .get(at.getTime(), session.id) as SessionRow;
    return sessionFromRow(row);
  }

  /**
   * Claimed files whose identity is published all the same: impossible while claims and published
   * files are checked against each other, but a database from before file identities may hold such
   * a claim, and publishing it would break the unique index and leave the session processing.
   */
  private claimsPublishedMeanwhile(sessionId: string): { filename: string; holder: string }[] {
    return this.connection
      .prepared(
        `SELECT filename, holder FROM (
         SELECT f.filename AS filename, COALESCE(
           (SELECT p.filename FROM published_files p WHERE p.project = c.project AND p.identity = f.identity),
           (SELECT g.filename FROM filename_claims d JOIN files g ON g.id = d.file_id
            WHERE d.session_id = c.session_id AND g.identity = f.identity AND g.id <> f.id)
         ) AS holder
         FROM filename_claims c JOIN files f ON f.id = c.file_id WHERE c.session_id = ?)
       WHERE holder IS NOT NULL ORDER BY filename`,
      )
      .all(sessionId) as { filename: string; holder: string }[];
  }

  /** Who registered a new project name, and when (counted by `newNameRefusal`). */
  private recordRegistration(session: PublishingSessionRecord, at: Date): void {
    this.connection
      .prepared('UPDATE projects SET registered_by = ?, registered_at = ? WHERE name = ?')
      .run(session.createdBy, at.getTime(), session.project);
  }

  async settlePublish(
    id: string,
    at: Date,
    outcome:
      | { readonly ok: true }
      | { readonly ok: false; readonly notices: readonly string[]; readonly fileNotices?: Readonly<Record<string, readonly string[]>> },
  ): Promise<PublishingSessionRecord | undefined> {
    return this.connection.inWriteTransaction(() => {
      const session = this.connection.readSession(id);
      if (session?.status !== 'processing') return undefined;
      if (outcome.ok) {
        const clashes = this.claimsPublishedMeanwhile(id);
        if (clashes.length === 0) {
          return this.publishFiles(
            session,
            at,
            `SELECT files.* FROM filename_claims JOIN files ON files.id = filename_claims.file_id
             WHERE filename_claims.session_id = ?`,
          );
        }
        const reasons = clashes.map((c) => `${c.filename} (the same distribution as ${c.holder})`);
        outcome = {
          ok: false,
          notices: [`Publishing failed: already published for this release: ${reasons.join(', ')}. Delete these files and publish again.`],
        };
      }
      // Failure releases the filenames (PEP 694 "Atomic Publication and Conflicts").
      this.connection.prepared('DELETE FROM filename_claims WHERE session_id = ?').run(id);
      for (const [filename, notices] of Object.entries(outcome.fileNotices ?? {})) {
        this.connection
          .prepared(`UPDATE files SET notices = ? WHERE session_id = ? AND filename = ? AND status <> 'canceled'`)
          .run(JSON.stringify(notices), id, filename);
      }
      const row = this.connection
        .prepared(`UPDATE sessions SET status = 'error', notices = ? WHERE id = ? RETURNING *`)
        .get(JSON.stringify(outcome.notices), id) as SessionRow;
      return sessionFromRow(row);
    });
  }
}
