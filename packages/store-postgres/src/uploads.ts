/**
 * The PostgreSQL store's upload role (UploadStore) but for publishing: publishing sessions, file
 * upload sessions, and the checks against the published namespace that both need. Publishing is
 * in ./publishing.ts. Every write is one SERIALIZABLE transaction (see ./connection.ts).
 */
import {
  EDITABLE_SESSION_STATES,
  LIVE_SESSION_STATES,
  type CreateFileLimits,
  type CreateFileResult,
  type CreateSessionResult,
  type FileUploadPatch,
  type FileUploadRecord,
  type FileUploadStatus,
  type FileUploadSummary,
  type NewFileUpload,
  type NewNameLimit,
  type NewPublishingSession,
  type PublishingSessionRecord,
  type PublishingSessionStatus,
  type UploadStore,
} from '@pep694/core';
import type { PostgresConnection, Queryable } from './connection.js';
import {
  byteaFromBytes,
  FILE_COLUMNS_WITHOUT_METADATA,
  fileFromRow,
  fileSummaryFromRow,
  json,
  metadataSha256,
  sessionFromRow,
  stageTokenKey,
  type FileRow,
  type FileSummaryRow,
  type ProjectRow,
  type SessionRow,
} from './rows.js';
import { FILES_HOLDING_BYTES_SQL, LIVE_SESSIONS_SQL } from './sql.js';

/** Whether a filename is published in project $1 or claimed there by a session other than $3 (filename $2). */
const FILENAME_TAKEN_SQL = `SELECT EXISTS (SELECT 1 FROM published_files p WHERE p.project = $1 AND p.filename = $2)
  OR EXISTS (SELECT 1 FROM filename_claims c WHERE c.project = $1 AND c.filename = $2 AND c.session_id <> $3) AS taken`;

/** The file name holding identity $2 in project $1: published, or claimed by a session other than $3. */
const IDENTITY_HOLDER_SQL = `
  SELECT filename FROM published_files WHERE project = $1 AND identity = $2
  UNION ALL
  SELECT filename FROM filename_claims WHERE project = $1 AND identity = $2 AND session_id <> $3
  LIMIT 1`;

/** The write queue of publishing session `id` (see PostgresConnection.inWriteTransaction). */
export const sessionWriteQueue = (id: string): string => `session:${id}`;

/**
 * The write queue of the creates of one principal's files under the staged-bytes quota. Each such
 * create sums the principal's staged files and adds one, so two of them in different sessions
 * conflict as two in one session do: without this queue, 64 creates at once in 8 sessions of one
 * principal over 3 pools were retried about 200 times (2026-12-07).
 */
export const principalWriteQueue = (principal: string): string => `principal:${principal}`;

/** `$from, $from+1, …`: `n` positional parameters, for `IN (…)` over a list the caller binds. */
const params = (from: number, n: number) => Array.from({ length: n }, (_, i) => `$${from + i}`).join(', ');

/**
 * Bytes principal $1 holds in files not yet published: pending, processing or completed, in
 * sessions still open, processing or error. `NOT f.published` matches the partial index
 * files_staged_by: the files a principal published in the last `retention` are not read.
 */
export const STAGED_BYTES_SQL = `SELECT COALESCE(SUM(f.size), 0)::bigint AS used FROM files f JOIN sessions s ON s.id = f.session_id
  WHERE f.created_by = $1 AND NOT f.published AND f.status IN ${FILES_HOLDING_BYTES_SQL} AND s.status IN ${LIVE_SESSIONS_SQL}`;

export class PostgresUploads implements Omit<UploadStore, 'publish' | 'settlePublish' | 'publishFile'> {
  constructor(private readonly connection: PostgresConnection) {}

  private async isTakenByAnother(project: string, filename: string, session: string, on?: Queryable): Promise<boolean> {
    return (await this.connection.row<{ taken: boolean }>(FILENAME_TAKEN_SQL, [project, filename, session], on))?.taken === true;
  }

  private async filenameHoldingIdentity(project: string, identity: string, session: string, on?: Queryable): Promise<string | undefined> {
    return (await this.connection.row<{ filename: string }>(IDENTITY_HOLDER_SQL, [project, identity, session], on))?.filename;
  }

  /** Bytes a principal holds in files not yet published (STAGED_BYTES_SQL). */
  private async stagedBytes(principal: string, on: Queryable): Promise<number> {
    const row = await this.connection.row<{ used: number }>(STAGED_BYTES_SQL, [principal], on);
    return row?.used ?? 0;
  }

  // ---- Publishing sessions ----------------------------------------------------------------------

  async createSession(input: NewPublishingSession, opts: { readonly newNames?: NewNameLimit } = {}): Promise<CreateSessionResult> {
    return this.connection.inWriteTransaction(async (c): Promise<CreateSessionResult> => {
      const live = await this.connection.row<SessionRow>(
        `SELECT * FROM sessions WHERE project = $1 AND release_key = $2 AND status IN ${LIVE_SESSIONS_SQL}`,
        [input.project, input.releaseKey],
        c,
      );
      if (live) return { kind: 'exists', session: sessionFromRow(live) };

      const project = await this.connection.row<ProjectRow>('SELECT * FROM projects WHERE name = $1', [input.project], c);
      let reserves = !project;
      // Another version of a name the creator already reserves: the session is a first release
      // too (its creator stays authorized), but the reservation row keeps its holder.
      let joinsReservation = false;
      if (project && !project.registered) {
        const holder = project.reserved_by === null ? undefined : await this.connection.readSession(project.reserved_by, c);
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
        reserves && !joinsReservation && opts.newNames
          ? await newNameRefusal(this.connection, c, input.createdBy, input.createdAt, opts.newNames)
          : undefined;
      if (refusal) return refusal;

      const row = await this.connection.row<SessionRow>(
        `INSERT INTO sessions (id, project, display_name, version, release_key, status, stage_token, stage_key,
           created_by, created_at, expires_at, ended_at, reserves_name, notices)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9, $10, NULL, $11, '[]') RETURNING *`,
        [
          input.id,
          input.project,
          input.displayName,
          input.version,
          input.releaseKey,
          input.stageToken,
          input.stageToken === null ? null : stageTokenKey(input.stageToken),
          input.createdBy,
          input.createdAt,
          input.expiresAt,
          reserves,
        ],
        c,
      );
      if (reserves && !joinsReservation) {
        await c.query(
          `INSERT INTO projects (name, display_name, registered, reserved_by) VALUES ($1, $2, false, $3)
           ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, reserved_by = excluded.reserved_by`,
          [input.project, input.displayName, input.id],
        );
      }
      return { kind: 'created', session: sessionFromRow(row!) };
    });
  }

  async getSession(id: string): Promise<PublishingSessionRecord | undefined> {
    return this.connection.readSession(id);
  }

  async countLiveSessions(createdBy: string): Promise<number> {
    const row = await this.connection.row<{ n: number }>(
      `SELECT COUNT(*)::bigint AS n FROM sessions WHERE created_by = $1 AND status IN ${LIVE_SESSIONS_SQL}`,
      [createdBy],
    );
    return row?.n ?? 0;
  }

  async updateSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    patch: { readonly expiresAt?: Date; readonly notices?: readonly string[] },
  ): Promise<PublishingSessionRecord | undefined> {
    if (expect.length === 0) return undefined;
    return this.connection.inWriteTransaction(async (c) => {
      const row = await this.connection.row<SessionRow>(
        `UPDATE sessions SET expires_at = COALESCE($1, expires_at), notices = COALESCE($2::json, notices)
         WHERE id = $3 AND status IN (${params(4, expect.length)}) RETURNING *`,
        [patch.expiresAt ?? null, patch.notices ? json(patch.notices) : null, id, ...expect],
        c,
      );
      return row && sessionFromRow(row);
    });
  }

  /**
   * The returned files are as stored after the cancel (status 'canceled'), with their blobKey.
   * It queues with the updates of the session's files: it locks the session row, then its file
   * rows, and a completion in flight the other way round (its file row, then the session row
   * through the files trigger), so the two at once deadlock, and PostgreSQL only tells after its
   * `deadlock_timeout` (1 s by default).
   */
  async cancelSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    at: Date,
  ): Promise<{ readonly session: PublishingSessionRecord; readonly files: readonly FileUploadRecord[] } | undefined> {
    if (expect.length === 0) return undefined;
    return this.connection.inWriteTransaction(
      async (c) => {
        const row = await this.connection.row<SessionRow>(
          `UPDATE sessions SET status = 'canceled', ended_at = $1 WHERE id = $2 AND status IN (${params(3, expect.length)}) RETURNING *`,
          [at, id, ...expect],
          c,
        );
        if (!row) return undefined;
        const files = await this.connection.rows<FileRow>(
          `UPDATE files SET status = 'canceled' WHERE session_id = $1 AND status <> 'canceled' RETURNING *`,
          [id],
          c,
        );
        await c.query('DELETE FROM filename_claims WHERE session_id = $1', [id]);
        // A reservation held with other live first-release sessions of the same creator (other
        // versions) passes to the oldest of them; otherwise PEP 694: a canceled first-release session
        // deletes the project "as if it were never uploaded".
        const heir = await this.connection.row<{ id: string }>(
          `SELECT id FROM sessions WHERE project = $1 AND id <> $2 AND reserves_name AND created_by = $3
           AND status IN ${LIVE_SESSIONS_SQL} ORDER BY created_at, id COLLATE "C" LIMIT 1`,
          [row.project, id, row.created_by],
          c,
        );
        if (heir) {
          await c.query('UPDATE projects SET reserved_by = $1 WHERE name = $2 AND reserved_by = $3 AND NOT registered', [
            heir.id,
            row.project,
            id,
          ]);
        } else {
          await c.query('DELETE FROM projects WHERE name = $1 AND reserved_by = $2 AND NOT registered', [row.project, id]);
        }
        files.sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : 1));
        return { session: sessionFromRow(row), files: files.map(fileFromRow) };
      },
      { queue: sessionWriteQueue(id) },
    );
  }

  // ---- File upload sessions ---------------------------------------------------------------------

  /**
   * Creates of files in one publishing session queue on that session (see
   * PostgresConnection.inWriteTransaction): each reads the session's files (the count, the name,
   * the identity) and adds one, and the files trigger bumps the session row's `files_version`, so
   * two such steps at once are bound to conflict, and all but one of them would be retried.
   */
  async createFile(input: NewFileUpload, opts: CreateFileLimits): Promise<CreateFileResult> {
    return this.connection.inWriteTransaction(
      async (c): Promise<CreateFileResult> => {
        const session = await this.connection.readSession(input.sessionId, c);
        if (!session) throw new Error(`unknown publishing session ${input.sessionId}`);
        if (!EDITABLE_SESSION_STATES.includes(session.status)) return { kind: 'session-state', status: session.status };
        if (await this.isTakenByAnother(session.project, input.filename, session.id, c))
          return { kind: 'published', filename: input.filename };
        const holder = await this.filenameHoldingIdentity(session.project, input.identity, session.id, c);
        if (holder !== undefined) return { kind: 'published', filename: holder };

        const existing = await this.connection.row<FileRow>(
          `SELECT * FROM files WHERE session_id = $1 AND filename = $2 AND status <> 'canceled'`,
          [session.id, input.filename],
          c,
        );
        if (existing && existing.status !== 'completed') return { kind: 'exists', file: fileFromRow(existing) };
        const twin = await this.connection.row<FileRow>(
          `SELECT * FROM files WHERE session_id = $1 AND identity = $2 AND filename <> $3 AND status <> 'canceled' LIMIT 1`,
          [session.id, input.identity, input.filename],
          c,
        );
        if (twin) return { kind: 'same-distribution', file: fileFromRow(twin) };

        const counts = await this.connection.row<{ live: number; ever: number }>(
          `SELECT COUNT(*) FILTER (WHERE status <> 'canceled')::bigint AS live, COUNT(*)::bigint AS ever FROM files WHERE session_id = $1`,
          [session.id],
          c,
        );
        if ((counts?.live ?? 0) - (existing ? 1 : 0) >= opts.maxFiles) return { kind: 'too-many-files', limit: opts.maxFiles };
        if (opts.maxFileSessions !== undefined && (counts?.ever ?? 0) >= opts.maxFileSessions) {
          return { kind: 'too-many-files', limit: opts.maxFileSessions, canceledIncluded: true };
        }
        const createdBy = input.createdBy ?? session.createdBy;
        if (opts.maxStagedBytes !== undefined) {
          // The completed file this one replaces stops counting.
          const used = (await this.stagedBytes(createdBy, c)) - (existing?.created_by === createdBy ? existing.size : 0);
          if (used + input.size > opts.maxStagedBytes) return { kind: 'over-quota', quota: opts.maxStagedBytes, used };
        }

        // Replacing a completed file (PEP 694 "Replacing a Partially or Fully Uploaded File").
        const replacedRow = existing
          ? await this.connection.row<FileRow>(`UPDATE files SET status = 'canceled' WHERE id = $1 RETURNING *`, [existing.id], c)
          : undefined;
        const row = await this.connection.row<FileRow>(
          `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at,
           notices, blob_key, attestations, instructions, core_metadata, requires_python, identity, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, '[]', NULL, NULL, $9, NULL, NULL, $10, $11) RETURNING *`,
          [
            input.id,
            input.sessionId,
            input.filename,
            input.size,
            json(input.hashes),
            input.mechanism,
            input.createdAt,
            input.expiresAt,
            input.instructions ? json(input.instructions) : null,
            input.identity,
            createdBy,
          ],
          c,
        );
        return { kind: 'created', file: fileFromRow(row!), replaced: replacedRow ? fileFromRow(replacedRow) : null };
      },
      {
        // The principal's queue only when the quota is summed and the creator is known before the
        // transaction (else it is the session's creator, read inside it: retries settle that case).
        queue:
          opts.maxStagedBytes !== undefined && input.createdBy !== undefined
            ? [sessionWriteQueue(input.sessionId), principalWriteQueue(input.createdBy)]
            : sessionWriteQueue(input.sessionId),
      },
    );
  }

  async getFile(id: string): Promise<FileUploadRecord | undefined> {
    return this.connection.readFile(id);
  }

  /** Selects the columns without core_metadata: a status request must not read the bytes. */
  async listFiles(sessionId: string, opts?: { readonly includeCanceled?: boolean }): Promise<readonly FileUploadSummary[]> {
    const rows = await this.connection.rows<FileSummaryRow>(
      `SELECT ${FILE_COLUMNS_WITHOUT_METADATA} FROM files WHERE session_id = $1 ${opts?.includeCanceled ? '' : `AND status <> 'canceled'`}
       ORDER BY created_at, id`,
      [sessionId],
    );
    return rows.map(fileSummaryFromRow);
  }

  /**
   * Updates of files in one publishing session (completions, cancels, extensions) queue on that
   * session as its creates do: the files trigger bumps the session row's `files_version` on a
   * change of status, bytes or metadata, and a step expecting session states reads that row, so
   * two completions of different files at once are bound to conflict.
   */
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
    if (patch.expiresAt !== undefined) columns.push(['expires_at', patch.expiresAt]);
    if (patch.notices !== undefined) columns.push(['notices', json(patch.notices)]);
    if (patch.blobKey !== undefined) columns.push(['blob_key', patch.blobKey]);
    if (patch.attestations !== undefined) columns.push(['attestations', json(patch.attestations)]);
    if (patch.instructions !== undefined) columns.push(['instructions', json(patch.instructions)]);
    if (patch.coreMetadata !== undefined) {
      // The PEP 658 digest is computed here, once, and stored with the bytes (never per request).
      columns.push(['core_metadata', byteaFromBytes(patch.coreMetadata)]);
      columns.push(['core_metadata_sha256', patch.coreMetadata === null ? null : metadataSha256(patch.coreMetadata)]);
    }
    if (patch.requiresPython !== undefined) columns.push(['requires_python', patch.requiresPython]);
    const set = columns.length > 0 ? columns.map(([col], i) => `${col} = $${i + 1}`).join(', ') : 'status = status';
    const n = columns.length;
    const values = [...columns.map(([, v]) => v), id, ...expect, ...(sessionExpect ?? [])];
    // The session's status is checked in the same transaction, so a cancel cannot slip in between.
    const sessionCheck = sessionExpect
      ? `AND session_id IN (SELECT id FROM sessions WHERE status IN (${params(n + 2 + expect.length, sessionExpect.length)}))`
      : '';
    const sessionId = this.connection.queueWrites ? await this.sessionOfFile(id) : undefined;
    return this.connection.inWriteTransaction(
      async (c) => {
        const row = await this.connection.row<FileRow>(
          `UPDATE files SET ${set} WHERE id = $${n + 1} AND status IN (${params(n + 2, expect.length)}) ${sessionCheck} RETURNING *`,
          values,
          c,
        );
        return row && fileFromRow(row);
      },
      sessionId === undefined ? {} : { queue: sessionWriteQueue(sessionId) },
    );
  }

  /**
   * The publishing session of file `id`, read outside the write step (one lookup on the primary
   * key): a file never moves to another session, so the answer cannot go stale before the step
   * runs. Undefined for an unknown file, whose update then runs unqueued (and finds nothing).
   */
  private async sessionOfFile(id: string): Promise<string | undefined> {
    return (await this.connection.row<{ session_id: string }>('SELECT session_id FROM files WHERE id = $1', [id]))?.session_id;
  }

  // ---- Published namespace ----------------------------------------------------------------------

  async isPublishedProject(project: string): Promise<boolean> {
    return (await this.connection.row('SELECT 1 FROM projects WHERE name = $1 AND registered', [project])) !== undefined;
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
 * transaction (`c`), so parallel creations cannot all slip under it.
 */
export async function newNameRefusal(
  connection: PostgresConnection,
  c: Queryable,
  principal: string,
  now: Date,
  { limit, windowMs }: NewNameLimit,
): Promise<Extract<CreateSessionResult, { kind: 'too-many-new-names' }> | undefined> {
  const registeredAt = (
    await connection.rows<{ registered_at: Date }>(
      'SELECT registered_at FROM projects WHERE registered_by = $1 AND registered_at > $2 ORDER BY registered_at',
      [principal, new Date(now.getTime() - windowMs)],
      c,
    )
  ).map((r) => r.registered_at);
  const reserved =
    (
      await connection.row<{ n: number }>(
        `SELECT COUNT(*)::bigint AS n FROM projects p JOIN sessions s ON s.id = p.reserved_by
         WHERE NOT p.registered AND s.created_by = $1 AND s.status IN ${LIVE_SESSIONS_SQL}`,
        [principal],
        c,
      )
    )?.n ?? 0;
  if (registeredAt.length + reserved < limit) return undefined;
  // The oldest registration leaving the window frees a place; reservations free theirs when
  // their session is published (then counted as registered) or canceled.
  const retryAt = new Date((registeredAt[0]?.getTime() ?? now.getTime()) + windowMs);
  return { kind: 'too-many-new-names', limit, registered: registeredAt.length, reserved, retryAt };
}
