/**
 * The SQLite store's upload role (UploadStore) but for publishing: publishing sessions, file
 * upload sessions, and the checks against the published namespace that both need. Publishing is
 * in ./publishing.ts.
 */
import {
  EDITABLE_SESSION_STATES,
  LIVE_SESSION_STATES,
  type CreateFileLimits,
  type CreateFileResult,
  type CreateSessionResult,
  type FileUploadPatch,
  type FileUploadRecord,
  type FileUploadSummary,
  type FileUploadStatus,
  type NewFileUpload,
  type NewNameLimit,
  type NewPublishingSession,
  type PublishingSessionRecord,
  type PublishingSessionStatus,
  type UploadStore,
} from '@pep694/core';
import type { SqliteConnection } from './connection.js';
import {
  blobFromBytes,
  FILE_COLUMNS_WITHOUT_METADATA,
  fileFromRow,
  fileSummaryFromRow,
  metadataSha256,
  sessionFromRow,
  stageTokenKey,
  type FileRow,
  type FileSummaryRow,
  type ProjectRow,
  type SessionRow,
} from './rows.js';
import { placeholders } from './sql.js';
import { FILES_HOLDING_BYTES_SQL, LIVE_SESSIONS_SQL } from './state-lists.js';

/** A filename is taken for a project when published or claimed by another session's publish. */
const FILENAME_TAKEN_SQL = `(
  EXISTS (SELECT 1 FROM published_files p WHERE p.project = :project AND p.filename = :filename)
  OR EXISTS (SELECT 1 FROM filename_claims c WHERE c.project = :project AND c.filename = :filename
             AND c.session_id <> :session))`;

/**
 * The file name holding an identity in a project: published, or claimed by another session's
 * publish. One `?`-free statement with :project, :identity and :session.
 */
const IDENTITY_HOLDER_SQL = `
  SELECT filename FROM published_files WHERE project = :project AND identity = :identity
  UNION ALL
  SELECT filename FROM filename_claims WHERE project = :project AND identity = :identity AND session_id <> :session
  LIMIT 1`;

export class SqliteUploads implements Omit<UploadStore, 'publish' | 'settlePublish' | 'publishFile'> {
  constructor(private readonly connection: SqliteConnection) {}

  /** Whether `filename` is published in `project` or claimed by a session other than `session`. */
  private isTakenByAnother(project: string, filename: string, session: string): boolean {
    return this.connection.prepared(`SELECT ${FILENAME_TAKEN_SQL} AS taken`).pluck().get({ project, filename, session }) === 1;
  }

  /** The file name holding `identity` in the project (published, or claimed by another session). */
  private filenameHoldingIdentity(project: string, identity: string, session: string): string | undefined {
    return this.connection.prepared(IDENTITY_HOLDER_SQL).pluck().get({ project, identity, session }) as string | undefined;
  }

  /**
   * Bytes a principal holds in files not yet published: pending, processing or completed, in
   * sessions still open, processing or error. Files in error hold none (their bytes are purged);
   * canceled, expired and published ones stop counting with that change of state.
   *
   * `published = 0` (a literal, so that SQLite can use the partial index files_staged_by): the
   * files a principal published in the last `retention` are not read, only what it has staged.
   */
  private stagedBytes(principal: string): number {
    return this.connection
      .prepared(
        `SELECT COALESCE(SUM(f.size), 0) FROM files f JOIN sessions s ON s.id = f.session_id
       WHERE f.created_by = ? AND f.published = 0 AND f.status IN ${FILES_HOLDING_BYTES_SQL} AND s.status IN ${LIVE_SESSIONS_SQL}`,
      )
      .pluck()
      .get(principal) as number;
  }

  // ---- Publishing sessions ----------------------------------------------------------------------

  async createSession(input: NewPublishingSession, opts: { readonly newNames?: NewNameLimit } = {}): Promise<CreateSessionResult> {
    return this.connection.inWriteTransaction((): CreateSessionResult => {
      const live = this.connection
        .prepared(`SELECT * FROM sessions WHERE project = ? AND release_key = ? AND status IN ${LIVE_SESSIONS_SQL}`)
        .get(input.project, input.releaseKey) as SessionRow | undefined;
      if (live) return { kind: 'exists', session: sessionFromRow(live) };

      const project = this.connection.prepared('SELECT * FROM projects WHERE name = ?').get(input.project) as ProjectRow | undefined;
      let reserves = !project;
      // Another version of a name the creator already reserves: the session is a first release
      // too (its creator stays authorized), but the reservation row keeps its holder.
      let joinsReservation = false;
      if (project && project.registered === 0) {
        const holder = project.reserved_by === null ? undefined : this.connection.readSession(project.reserved_by);
        if (holder && LIVE_SESSION_STATES.includes(holder.status)) {
          if (holder.releaseKey === input.releaseKey) return { kind: 'exists', session: holder };
          // The reservation keeps *other* claimants off a new name; its holder's other versions
          // get their own sessions (PEP 694 "Multiple Session Creation Requests").
          if (holder.createdBy !== input.createdBy) return { kind: 'name-reserved', session: holder };
          joinsReservation = true;
        }
        reserves = true; // a stale reservation (no live holder): take it over
      }
      const refusal =
        reserves && !joinsReservation && opts.newNames ? this.newNameRefusal(input.createdBy, input.createdAt, opts.newNames) : undefined;
      if (refusal) return refusal;

      this.connection
        .prepared(
          `INSERT INTO sessions (id, project, display_name, version, release_key, status, stage_token, stage_key,
           created_by, created_at, expires_at, ended_at, reserves_name, notices)
         VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, NULL, ?, '[]')`,
        )
        .run(
          input.id,
          input.project,
          input.displayName,
          input.version,
          input.releaseKey,
          input.stageToken,
          input.stageToken === null ? null : stageTokenKey(input.stageToken),
          input.createdBy,
          input.createdAt.getTime(),
          input.expiresAt.getTime(),
          reserves ? 1 : 0,
        );
      if (reserves && !joinsReservation) {
        this.connection
          .prepared(
            `INSERT INTO projects (name, display_name, registered, reserved_by) VALUES (?, ?, 0, ?)
           ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, reserved_by = excluded.reserved_by`,
          )
          .run(input.project, input.displayName, input.id);
      }
      return { kind: 'created', session: this.connection.readSession(input.id)! };
    });
  }

  /**
   * Whether `principal` may take one more new project name at `now`: names it registered within
   * the window plus names its live sessions reserve stay under `limit`. Checked in the creating
   * transaction, so parallel creations cannot all slip under it.
   */
  private newNameRefusal(principal: string, now: Date, limit: NewNameLimit): CreateSessionResult | undefined {
    return newNameRefusal(this.connection, principal, now, limit);
  }

  async getSession(id: string): Promise<PublishingSessionRecord | undefined> {
    return this.connection.readSession(id);
  }

  async countLiveSessions(createdBy: string): Promise<number> {
    return this.connection
      .prepared(`SELECT COUNT(*) FROM sessions WHERE created_by = ? AND status IN ${LIVE_SESSIONS_SQL}`)
      .pluck()
      .get(createdBy) as number;
  }

  async updateSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    patch: { readonly expiresAt?: Date; readonly notices?: readonly string[] },
  ): Promise<PublishingSessionRecord | undefined> {
    if (expect.length === 0) return undefined;
    const row = this.connection
      .prepared(
        `UPDATE sessions SET expires_at = COALESCE(?, expires_at), notices = COALESCE(?, notices)
       WHERE id = ? AND status IN (${placeholders(expect.length)}) RETURNING *`,
      )
      .get(patch.expiresAt?.getTime() ?? null, patch.notices ? JSON.stringify(patch.notices) : null, id, ...expect) as
      SessionRow | undefined;
    return row && sessionFromRow(row);
  }

  /** The returned files are as stored after the cancel (status 'canceled'), with their blobKey. */
  async cancelSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    at: Date,
  ): Promise<{ readonly session: PublishingSessionRecord; readonly files: readonly FileUploadRecord[] } | undefined> {
    if (expect.length === 0) return undefined;
    return this.connection.inWriteTransaction(() => {
      const row = this.connection
        .prepared(
          `UPDATE sessions SET status = 'canceled', ended_at = ?
         WHERE id = ? AND status IN (${placeholders(expect.length)}) RETURNING *`,
        )
        .get(at.getTime(), id, ...expect) as SessionRow | undefined;
      if (!row) return undefined;
      const files = this.connection
        .prepared(`UPDATE files SET status = 'canceled' WHERE session_id = ? AND status <> 'canceled' RETURNING *`)
        .all(id) as FileRow[];
      this.connection.prepared('DELETE FROM filename_claims WHERE session_id = ?').run(id);
      // A reservation held with other live first-release sessions of the same creator (other
      // versions) passes to the oldest of them; otherwise PEP 694: a canceled first-release session
      // deletes the project "as if it were never uploaded".
      const heir = this.connection
        .prepared(
          `SELECT id FROM sessions WHERE project = ? AND id <> ? AND reserves_name = 1 AND created_by = ?
             AND status IN ${LIVE_SESSIONS_SQL} ORDER BY created_at, id LIMIT 1`,
        )
        .pluck()
        .get(row.project, id, row.created_by) as string | undefined;
      if (heir !== undefined) {
        this.connection
          .prepared('UPDATE projects SET reserved_by = ? WHERE name = ? AND reserved_by = ? AND registered = 0')
          .run(heir, row.project, id);
      } else {
        this.connection.prepared('DELETE FROM projects WHERE name = ? AND reserved_by = ? AND registered = 0').run(row.project, id);
      }
      files.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
      return { session: sessionFromRow(row), files: files.map(fileFromRow) };
    });
  }

  // ---- File upload sessions ---------------------------------------------------------------------

  async createFile(input: NewFileUpload, opts: CreateFileLimits): Promise<CreateFileResult> {
    return this.connection.inWriteTransaction((): CreateFileResult => {
      const session = this.connection.readSession(input.sessionId);
      if (!session) throw new Error(`unknown publishing session ${input.sessionId}`);
      if (!EDITABLE_SESSION_STATES.includes(session.status)) return { kind: 'session-state', status: session.status };
      if (this.isTakenByAnother(session.project, input.filename, session.id)) return { kind: 'published', filename: input.filename };
      const holder = this.filenameHoldingIdentity(session.project, input.identity, session.id);
      if (holder !== undefined) return { kind: 'published', filename: holder };

      const existing = this.connection
        .prepared(`SELECT * FROM files WHERE session_id = ? AND filename = ? AND status <> 'canceled'`)
        .get(session.id, input.filename) as FileRow | undefined;
      if (existing && existing.status !== 'completed') return { kind: 'exists', file: fileFromRow(existing) };
      const twin = this.connection
        .prepared(`SELECT * FROM files WHERE session_id = ? AND identity = ? AND filename <> ? AND status <> 'canceled'`)
        .get(session.id, input.identity, input.filename) as FileRow | undefined;
      if (twin) return { kind: 'same-distribution', file: fileFromRow(twin) };

      const count = this.connection
        .prepared(`SELECT COUNT(*) FROM files WHERE session_id = ? AND status <> 'canceled'`)
        .pluck()
        .get(session.id) as number;
      if (count - (existing ? 1 : 0) >= opts.maxFiles) return { kind: 'too-many-files', limit: opts.maxFiles };
      if (opts.maxFileSessions !== undefined) {
        const ever = this.connection.prepared(`SELECT COUNT(*) FROM files WHERE session_id = ?`).pluck().get(session.id) as number;
        if (ever >= opts.maxFileSessions) return { kind: 'too-many-files', limit: opts.maxFileSessions, canceledIncluded: true };
      }
      const createdBy = input.createdBy ?? session.createdBy;
      if (opts.maxStagedBytes !== undefined) {
        // The completed file this one replaces stops counting.
        const used = this.stagedBytes(createdBy) - (existing?.created_by === createdBy ? existing.size : 0);
        if (used + input.size > opts.maxStagedBytes) return { kind: 'over-quota', quota: opts.maxStagedBytes, used };
      }

      // Replacing a completed file (PEP 694 "Replacing a Partially or Fully Uploaded File").
      const replaced = existing
        ? fileFromRow(this.connection.prepared(`UPDATE files SET status = 'canceled' WHERE id = ? RETURNING *`).get(existing.id) as FileRow)
        : null;
      const row = this.connection
        .prepared(
          `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at,
           notices, blob_key, attestations, instructions, core_metadata, requires_python, identity, created_by)
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, '[]', NULL, NULL, ?, NULL, NULL, ?, ?) RETURNING *`,
        )
        .get(
          input.id,
          input.sessionId,
          input.filename,
          input.size,
          JSON.stringify(input.hashes),
          input.mechanism,
          input.createdAt.getTime(),
          input.expiresAt.getTime(),
          input.instructions ? JSON.stringify(input.instructions) : null,
          input.identity,
          createdBy,
        ) as FileRow;
      return { kind: 'created', file: fileFromRow(row), replaced };
    });
  }

  async getFile(id: string): Promise<FileUploadRecord | undefined> {
    return this.connection.readFile(id);
  }

  /** Selects the columns without core_metadata: a status request must not read the bytes. */
  async listFiles(sessionId: string, opts?: { readonly includeCanceled?: boolean }): Promise<readonly FileUploadSummary[]> {
    const rows = this.connection
      .prepared(
        `SELECT ${FILE_COLUMNS_WITHOUT_METADATA} FROM files WHERE session_id = ? ${opts?.includeCanceled ? '' : `AND status <> 'canceled'`}
       ORDER BY created_at, id`,
      )
      .all(sessionId) as FileSummaryRow[];
    return rows.map(fileSummaryFromRow);
  }

  async updateFile(
    id: string,
    expect: readonly FileUploadStatus[],
    patch: FileUploadPatch,
    sessionExpect?: readonly PublishingSessionStatus[],
  ): Promise<FileUploadRecord | undefined> {
    if (expect.length === 0 || sessionExpect?.length === 0) return undefined;
    // Only the keys present are written: an explicit null clears a column, undefined keeps it.
    const columns: [string, unknown][] = [];
    if (patch.status !== undefined) columns.push(['status', patch.status]);
    if (patch.expiresAt !== undefined) columns.push(['expires_at', patch.expiresAt.getTime()]);
    if (patch.notices !== undefined) columns.push(['notices', JSON.stringify(patch.notices)]);
    if (patch.blobKey !== undefined) columns.push(['blob_key', patch.blobKey]);
    if (patch.attestations !== undefined) {
      columns.push(['attestations', patch.attestations === null ? null : JSON.stringify(patch.attestations)]);
    }
    if (patch.instructions !== undefined) {
      columns.push(['instructions', patch.instructions === null ? null : JSON.stringify(patch.instructions)]);
    }
    if (patch.coreMetadata !== undefined) {
      // The PEP 658 digest is computed here, once, and stored with the bytes (never per request).
      columns.push(['core_metadata', blobFromBytes(patch.coreMetadata)]);
      columns.push(['core_metadata_sha256', patch.coreMetadata === null ? null : metadataSha256(patch.coreMetadata)]);
    }
    if (patch.requiresPython !== undefined) columns.push(['requires_python', patch.requiresPython]);
    const set = columns.length > 0 ? columns.map(([c]) => `${c} = ?`).join(', ') : 'status = status';
    // One statement, so the session check and the file update cannot be split by another writer.
    // EXISTS on this file's session (its primary key): `session_id IN (SELECT id FROM sessions
    // WHERE status IN …)` made SQLite list every session first, 17 ms of the event loop per
    // completion with 20 000 sessions kept.
    const sessionCheck = sessionExpect
      ? `AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = files.session_id AND s.status IN (${placeholders(sessionExpect.length)}))`
      : '';
    const row = this.connection
      .prepared(`UPDATE files SET ${set} WHERE id = ? AND status IN (${placeholders(expect.length)}) ${sessionCheck} RETURNING *`)
      .get(...columns.map(([, v]) => v), id, ...expect, ...(sessionExpect ?? [])) as FileRow | undefined;
    return row && fileFromRow(row);
  }

  // ---- Published namespace ----------------------------------------------------------------------

  async isPublishedProject(project: string): Promise<boolean> {
    return this.connection.prepared('SELECT 1 FROM projects WHERE name = ? AND registered = 1').get(project) !== undefined;
  }

  async isFilenameTaken(project: string, filename: string): Promise<boolean> {
    return this.isTakenByAnother(project, filename, '');
  }

  async findPublishedIdentity(project: string, identity: string): Promise<string | undefined> {
    return this.filenameHoldingIdentity(project, identity, '');
  }
}

/**
 * Whether `principal` may take one more new project name at `now`: names it registered within
 * the window plus names its live sessions reserve stay under `limit`. Checked in the creating
 * transaction, so parallel creations cannot all slip under it.
 */
export function newNameRefusal(
  connection: SqliteConnection,
  principal: string,
  now: Date,
  { limit, windowMs }: NewNameLimit,
): Extract<CreateSessionResult, { kind: 'too-many-new-names' }> | undefined {
  const registeredAt = connection
    .prepared('SELECT registered_at FROM projects WHERE registered_by = ? AND registered_at > ? ORDER BY registered_at')
    .pluck()
    .all(principal, now.getTime() - windowMs) as number[];
  const reserved = connection
    .prepared(
      `SELECT COUNT(*) FROM projects p JOIN sessions s ON s.id = p.reserved_by
     WHERE p.registered = 0 AND s.created_by = ? AND s.status IN ${LIVE_SESSIONS_SQL}`,
    )
    .pluck()
    .get(principal) as number;
  if (registeredAt.length + reserved < limit) return undefined;
  // The oldest registration leaving the window frees a place; reservations free theirs when
  // their session is published (then counted as registered) or canceled.
  const retryAt = new Date((registeredAt[0] ?? now.getTime()) + windowMs);
  return { kind: 'too-many-new-names', limit, registered: registeredAt.length, reserved, retryAt };
}
