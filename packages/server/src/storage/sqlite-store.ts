/**
 * SessionStore on embedded SQLite (better-sqlite3).
 *
 * The uniqueness rules of PEP 694 are constraints in the schema (see MIGRATIONS), so the database
 * settles races, including between processes sharing the file. Every method is one transaction,
 * started with BEGIN IMMEDIATE: it takes the write lock up front, so a read-check-write sequence
 * cannot be invalidated by another connection's commit (a deferred transaction would fail with
 * SQLITE_BUSY_SNAPSHOT when upgrading to write instead of waiting on busy_timeout). Should a
 * constraint still fire (a check this code missed), the whole step is retried once, and the retry
 * sees the winner and returns the proper result kind ('exists', 'conflict', ...).
 *
 * Only type imports from @pep694/core: this module loads with better-sqlite3 alone. File identities
 * (`distributionIdentity` in core) therefore come from the caller: with each new file, and as the
 * `fileIdentity` option for the migration that fills them in for rows written before they existed.
 * The SQL avoids SQLite-only syntax outside setup (partial indexes, ON CONFLICT ... DO UPDATE and
 * RETURNING all exist in PostgreSQL); a PostgreSQL port needs SERIALIZABLE or a row lock where
 * this relies on SQLite's single writer.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type {
  CreateFileLimits,
  CreateFileResult,
  CreateSessionResult,
  FileUploadPatch,
  FileUploadRecord,
  MechanismMap,
  FileUploadStatus,
  IndexScope,
  NewFileUpload,
  NewNameLimit,
  NewPublishingSession,
  PublishedFile,
  PublishingSessionRecord,
  PublishingSessionStatus,
  PublishResult,
  SessionStore,
  StagedFile,
} from '@pep694/core';

/**
 * Schema steps: entry i takes `user_version` i to i+1. Append, never edit, so existing files
 * migrate forward.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    project       TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    version       TEXT NOT NULL,
    release_key   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('open', 'processing', 'published', 'error', 'canceled')),
    stage_token   TEXT UNIQUE,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    reserves_name INTEGER NOT NULL,
    notices       TEXT NOT NULL
  );
  -- PEP 694 "Multiple Session Creation Requests": one non-terminal session per name+version.
  CREATE UNIQUE INDEX sessions_live_release ON sessions (project, release_key)
    WHERE status IN ('open', 'processing', 'error');
  CREATE INDEX sessions_live_creator ON sessions (created_by) WHERE status IN ('open', 'processing', 'error');
  CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE status IN ('open', 'error');
  CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;

  -- A project is registered once a release is published (permanent), or only reserved by the live
  -- session creating its first release (PEP 694 "Create a Publishing Session"); reserved-only rows
  -- are invisible to the index.
  CREATE TABLE projects (
    name         TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    registered   INTEGER NOT NULL,
    reserved_by  TEXT REFERENCES sessions (id) ON DELETE SET NULL
  );

  CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    filename        TEXT NOT NULL,
    size            INTEGER NOT NULL,
    hashes          TEXT NOT NULL,
    mechanism       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'error', 'canceled')),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    notices         TEXT NOT NULL,
    blob_key        TEXT,
    attestations    TEXT,
    instructions    TEXT,
    core_metadata   BLOB,
    requires_python TEXT
  );
  -- One live file upload session per filename in a publishing session; canceled ones stay as history.
  CREATE UNIQUE INDEX files_live_name ON files (session_id, filename) WHERE status <> 'canceled';
  CREATE INDEX files_blob ON files (blob_key) WHERE blob_key IS NOT NULL;

  -- The published namespace. No foreign key to sessions or files: published files outlive the
  -- session rows that forgetEndedSessions deletes, so they carry their own copy of the data.
  CREATE TABLE published_files (
    project         TEXT NOT NULL REFERENCES projects (name),
    filename        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    version         TEXT NOT NULL,
    size            INTEGER NOT NULL,
    hashes          TEXT NOT NULL,
    blob_key        TEXT NOT NULL,
    published_at    INTEGER NOT NULL,
    session_id      TEXT NOT NULL,
    file_id         TEXT NOT NULL,
    core_metadata   BLOB,
    requires_python TEXT,
    PRIMARY KEY (project, filename)
  );
  CREATE INDEX published_blob ON published_files (blob_key);

  -- Filenames held by a deferred publish (PEP 694 "Atomic Publication and Conflicts"): taken
  -- exactly as if published until the publish settles.
  CREATE TABLE filename_claims (
    project    TEXT NOT NULL,
    filename   TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    file_id    TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    PRIMARY KEY (project, filename)
  );
  CREATE INDEX filename_claims_session ON filename_claims (session_id);
  `,
  // Stage tokens are looked up by their sha256, so that the B-tree comparison of the lookup (which
  // stops at the first differing byte) cannot tell a guesser by timing how much of a token matched.
  `
  ALTER TABLE sessions ADD COLUMN stage_key TEXT;
  UPDATE sessions SET stage_key = pep694_sha256(stage_token) WHERE stage_token IS NOT NULL;
  CREATE UNIQUE INDEX sessions_stage_key ON sessions (stage_key);
  `,
  // The canonical identity of each file (`distributionIdentity`): no two spellings of one
  // distribution (`Foo-1.0-…`, `foo-1.0.0-…`) in a project's published namespace or claims, and the
  // store refuses a second one in a session. Rows written before get it from the fileIdentity
  // option. Published files are immutable, so duplicates an older version let in are all kept: the
  // first published keeps the identity, the others get a marked one (unique by their file name).
  `
  ALTER TABLE files ADD COLUMN identity TEXT;
  ALTER TABLE published_files ADD COLUMN identity TEXT;
  ALTER TABLE filename_claims ADD COLUMN identity TEXT;
  UPDATE files SET identity = pep694_file_identity(filename);
  UPDATE published_files SET identity = pep694_file_identity(filename);
  UPDATE published_files SET identity = identity || ' duplicate ' || filename
    WHERE EXISTS (SELECT 1 FROM published_files o
                  WHERE o.project = published_files.project AND o.identity = published_files.identity
                    AND (o.published_at, o.filename) < (published_files.published_at, published_files.filename));
  UPDATE filename_claims SET identity = pep694_file_identity(filename);
  UPDATE filename_claims SET identity = identity || ' duplicate ' || filename
    WHERE EXISTS (SELECT 1 FROM filename_claims o
                  WHERE o.project = filename_claims.project AND o.identity = filename_claims.identity
                    AND o.filename < filename_claims.filename);
  CREATE UNIQUE INDEX published_identity ON published_files (project, identity);
  CREATE UNIQUE INDEX filename_claims_identity ON filename_claims (project, identity);
  CREATE INDEX files_live_identity ON files (session_id, identity) WHERE status <> 'canceled';
  `,
  // Who created each file upload session, for the per-principal quota on staged bytes.
  `
  ALTER TABLE files ADD COLUMN created_by TEXT;
  UPDATE files SET created_by = (SELECT created_by FROM sessions WHERE sessions.id = files.session_id);
  CREATE INDEX files_staged_by ON files (created_by) WHERE status IN ('pending', 'processing', 'completed');
  `,
  // Who registered each project and when, for the per-principal limit on new names. Projects
  // registered before are not counted (their registrant was not recorded).
  `
  ALTER TABLE projects ADD COLUMN registered_by TEXT;
  ALTER TABLE projects ADD COLUMN registered_at INTEGER;
  CREATE INDEX projects_registered_by ON projects (registered_by, registered_at) WHERE registered_by IS NOT NULL;
  `,
  // Index pages (issue #21): the PEP 658 metadata digest is stored with the file, computed once
  // when the metadata is written, so that listing a project never reads metadata bytes. Change
  // counters, bumped by triggers in the transaction of every change whatever statement makes it,
  // key the index's page caches; being in the database, they hold for every process sharing it.
  `
  ALTER TABLE files ADD COLUMN core_metadata_sha256 TEXT;
  UPDATE files SET core_metadata_sha256 = pep694_sha256_bytes(core_metadata) WHERE core_metadata IS NOT NULL;
  ALTER TABLE published_files ADD COLUMN core_metadata_sha256 TEXT;
  UPDATE published_files SET core_metadata_sha256 = pep694_sha256_bytes(core_metadata) WHERE core_metadata IS NOT NULL;

  CREATE TABLE index_version (id INTEGER PRIMARY KEY CHECK (id = 1), projects INTEGER NOT NULL);
  INSERT INTO index_version (id, projects) VALUES (1, 0);
  ALTER TABLE projects ADD COLUMN files_version INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sessions ADD COLUMN files_version INTEGER NOT NULL DEFAULT 0;

  CREATE TRIGGER index_projects_insert AFTER INSERT ON projects
  BEGIN UPDATE index_version SET projects = projects + 1; END;
  CREATE TRIGGER index_projects_update AFTER UPDATE OF name, display_name, registered ON projects
  BEGIN UPDATE index_version SET projects = projects + 1; END;
  CREATE TRIGGER index_projects_delete AFTER DELETE ON projects
  BEGIN UPDATE index_version SET projects = projects + 1; END;

  CREATE TRIGGER index_published_insert AFTER INSERT ON published_files
  BEGIN UPDATE projects SET files_version = files_version + 1 WHERE name = NEW.project; END;
  CREATE TRIGGER index_published_update AFTER UPDATE ON published_files
  BEGIN UPDATE projects SET files_version = files_version + 1 WHERE name IN (OLD.project, NEW.project); END;
  CREATE TRIGGER index_published_delete AFTER DELETE ON published_files
  BEGIN UPDATE projects SET files_version = files_version + 1 WHERE name = OLD.project; END;

  CREATE TRIGGER index_files_insert AFTER INSERT ON files
  BEGIN UPDATE sessions SET files_version = files_version + 1 WHERE id = NEW.session_id; END;
  CREATE TRIGGER index_files_update
  AFTER UPDATE OF session_id, filename, size, hashes, status, created_at, blob_key, core_metadata_sha256, requires_python ON files
  BEGIN UPDATE sessions SET files_version = files_version + 1 WHERE id IN (OLD.session_id, NEW.session_id); END;
  CREATE TRIGGER index_files_delete AFTER DELETE ON files
  BEGIN UPDATE sessions SET files_version = files_version + 1 WHERE id = OLD.session_id; END;
  `,
];

/** The lookup key of a stage token (see MIGRATIONS[1]). */
const stageKey = (token: string) => createHash('sha256').update(token).digest('hex');

/** The identity the migration gives a row written before identities existed (see MIGRATIONS[2]). */
function backfillIdentity(filename: unknown, fileIdentity: ((filename: string) => string) | undefined): string | null {
  if (typeof filename !== 'string') return null;
  if (!fileIdentity) {
    throw new Error(
      'this database holds files recorded before file identities existed: open it with the fileIdentity option (distributionIdentity from @pep694/core), as createServer does',
    );
  }
  try {
    return fileIdentity(filename);
  } catch {
    return `unparsed ${filename}`; // every stored name was validated; should one not parse, it stays unique
  }
}
/** The PEP 658 digest of core metadata bytes (see MIGRATIONS[5]). */
const metadataSha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface SessionRow {
  id: string;
  project: string;
  display_name: string;
  version: string;
  release_key: string;
  status: PublishingSessionStatus;
  stage_token: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  reserves_name: number;
  notices: string;
}

interface FileRow {
  id: string;
  session_id: string;
  filename: string;
  size: number;
  hashes: string;
  mechanism: string;
  status: FileUploadStatus;
  created_at: number;
  expires_at: number;
  notices: string;
  blob_key: string | null;
  attestations: string | null;
  instructions: string | null;
  core_metadata: Buffer | null;
  requires_python: string | null;
  identity: string | null;
  created_by: string | null;
  core_metadata_sha256: string | null;
}

interface PublishedRow {
  project: string;
  filename: string;
  display_name: string;
  version: string;
  size: number;
  hashes: string;
  blob_key: string;
  published_at: number;
  session_id: string;
  file_id: string;
  requires_python: string | null;
  core_metadata_sha256: string | null;
}

/** files without core_metadata, for the stage preview. */
const STAGED_COLUMNS = `id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices, blob_key,
  attestations, instructions, requires_python, core_metadata_sha256`;

/** published_files without core_metadata: listings and file lookups never read the bytes. */
const PUBLISHED_COLUMNS = `project, filename, display_name, version, size, hashes, blob_key, published_at, session_id, file_id,
  requires_python, core_metadata_sha256`;

interface ProjectRow {
  name: string;
  display_name: string;
  registered: number;
  reserved_by: string | null;
}

const LIVE_SQL = `('open', 'processing', 'error')`;

const toSession = (r: SessionRow): PublishingSessionRecord => ({
  id: r.id,
  project: r.project,
  displayName: r.display_name,
  version: r.version,
  releaseKey: r.release_key,
  status: r.status,
  stageToken: r.stage_token,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at),
  expiresAt: new Date(r.expires_at),
  endedAt: r.ended_at === null ? null : new Date(r.ended_at),
  reservesName: r.reserves_name === 1,
  notices: JSON.parse(r.notices) as string[],
});

// better-sqlite3 returns Buffers; hand out plain Uint8Arrays as the port declares.
const fromBlob = (b: Buffer | null) => (b === null ? null : new Uint8Array(b));
const toBlob = (u: Uint8Array | null) => (u === null ? null : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

const toFile = (r: FileRow): FileUploadRecord => ({
  id: r.id,
  sessionId: r.session_id,
  filename: r.filename,
  size: r.size,
  hashes: JSON.parse(r.hashes) as FileUploadRecord['hashes'],
  mechanism: r.mechanism,
  status: r.status,
  createdAt: new Date(r.created_at),
  expiresAt: new Date(r.expires_at),
  notices: JSON.parse(r.notices) as string[],
  blobKey: r.blob_key,
  attestations: r.attestations === null ? null : (JSON.parse(r.attestations) as unknown[]),
  instructions: r.instructions === null ? null : (JSON.parse(r.instructions) as MechanismMap),
  coreMetadata: fromBlob(r.core_metadata),
  requiresPython: r.requires_python,
  coreMetadataSha256: r.core_metadata_sha256,
});

const toPublished = (r: PublishedRow): PublishedFile => ({
  project: r.project,
  displayName: r.display_name,
  version: r.version,
  filename: r.filename,
  size: r.size,
  hashes: JSON.parse(r.hashes) as PublishedFile['hashes'],
  blobKey: r.blob_key,
  publishedAt: new Date(r.published_at),
  sessionId: r.session_id,
  fileId: r.file_id,
  coreMetadataSha256: r.core_metadata_sha256,
  requiresPython: r.requires_python,
});

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

const isUniqueViolation = (err: unknown) =>
  err instanceof Database.SqliteError &&
  (err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY');

/** A filename is taken for a project when published or claimed by another session's publish. */
const TAKEN_SQL = `(
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

/** Options of the store. */
export interface SqliteSessionStoreOptions {
  /**
   * `distributionIdentity` from `@pep694/core`, for the migration that gives rows written before
   * file identities existed theirs. Needed only to open such a file; createServer passes it.
   */
  readonly fileIdentity?: (filename: string) => string;
}

export class SqliteSessionStore implements SessionStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();

  constructor(filename: string, opts: SqliteSessionStoreOptions = {}) {
    this.db = new Database(filename);
    try {
      // busy_timeout first, so even switching to WAL waits for another process instead of failing.
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('journal_mode = WAL');
      // In WAL mode FULL fsyncs the WAL on every commit: a resolved publish survives a crash.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      // Only the migration that adds stage_key calls it; new rows get their key from stageKey().
      this.db.function('pep694_sha256', { deterministic: true }, (t: unknown) => (typeof t === 'string' ? stageKey(t) : null));
      this.db.function('pep694_file_identity', { deterministic: true }, (f: unknown) => backfillIdentity(f, opts.fileIdentity));
      // Only the migration that adds core_metadata_sha256 calls it; new rows get it from updateFile.
      this.db.function('pep694_sha256_bytes', { deterministic: true }, (b: unknown) => (b instanceof Uint8Array ? metadataSha256(b) : null));
      this.migrate();
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  static open(filename: string, opts: SqliteSessionStoreOptions = {}): SqliteSessionStore {
    return new SqliteSessionStore(filename, opts);
  }

  private migrate(): void {
    this.db
      .transaction(() => {
        // Read inside the write lock: two processes opening a new file migrate it once.
        const current = this.db.pragma('user_version', { simple: true }) as number;
        if (current > MIGRATIONS.length) {
          throw new Error(`database schema version ${current} is newer than this code (${MIGRATIONS.length})`);
        }
        for (let v = current; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]!);
        if (current !== MIGRATIONS.length) this.db.pragma(`user_version = ${MIGRATIONS.length}`);
      })
      .immediate();
  }

  private q(sql: string): Database.Statement<unknown[], unknown> {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** One atomic write step (see the module comment for the lock and the retry). */
  private write<T>(step: () => T): T {
    try {
      return this.db.transaction(step).immediate();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      return this.db.transaction(step).immediate();
    }
  }

  private session(id: string): PublishingSessionRecord | undefined {
    const row = this.q('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return row && toSession(row);
  }

  private file(id: string): FileUploadRecord | undefined {
    const row = this.q('SELECT * FROM files WHERE id = ?').get(id) as FileRow | undefined;
    return row && toFile(row);
  }

  private taken(project: string, filename: string, session: string): boolean {
    return this.q(`SELECT ${TAKEN_SQL} AS taken`).pluck().get({ project, filename, session }) === 1;
  }

  /** The file name holding `identity` in the project (published, or claimed by another session). */
  private identityHolder(project: string, identity: string, session: string): string | undefined {
    return this.q(IDENTITY_HOLDER_SQL).pluck().get({ project, identity, session }) as string | undefined;
  }

  /**
   * Bytes a principal holds in files not yet published: pending, processing or completed, in
   * sessions still open, processing or error. Files in error hold none (their bytes are purged);
   * canceled, expired and published ones stop counting with that change of state.
   */
  private stagedBytes(principal: string): number {
    return this.q(
      `SELECT COALESCE(SUM(f.size), 0) FROM files f JOIN sessions s ON s.id = f.session_id
       WHERE f.created_by = ? AND f.status IN ('pending', 'processing', 'completed') AND s.status IN ${LIVE_SQL}`,
    ).pluck().get(principal) as number;
  }

  // ---- Publishing sessions ----------------------------------------------------------------------

  async createSession(input: NewPublishingSession, opts: { readonly newNames?: NewNameLimit } = {}): Promise<CreateSessionResult> {
    return this.write((): CreateSessionResult => {
      const live = this.q(
        `SELECT * FROM sessions WHERE project = ? AND release_key = ? AND status IN ${LIVE_SQL}`,
      ).get(input.project, input.releaseKey) as SessionRow | undefined;
      if (live) return { kind: 'exists', session: toSession(live) };

      const project = this.q('SELECT * FROM projects WHERE name = ?').get(input.project) as ProjectRow | undefined;
      let reserves = !project;
      if (project && project.registered === 0) {
        const holder = project.reserved_by === null ? undefined : this.session(project.reserved_by);
        if (holder && ['open', 'processing', 'error'].includes(holder.status)) {
          return { kind: holder.releaseKey === input.releaseKey ? 'exists' : 'name-reserved', session: holder };
        }
        reserves = true; // a stale reservation (no live holder): take it over
      }
      const refusal = reserves && opts.newNames ? this.newNameRefusal(input.createdBy, input.createdAt, opts.newNames) : undefined;
      if (refusal) return refusal;

      this.q(
        `INSERT INTO sessions (id, project, display_name, version, release_key, status, stage_token, stage_key,
           created_by, created_at, expires_at, ended_at, reserves_name, notices)
         VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, NULL, ?, '[]')`,
      ).run(
        input.id, input.project, input.displayName, input.version, input.releaseKey, input.stageToken,
        input.stageToken === null ? null : stageKey(input.stageToken), input.createdBy, input.createdAt.getTime(), input.expiresAt.getTime(), reserves ? 1 : 0,
      );
      if (reserves) {
        this.q(
          `INSERT INTO projects (name, display_name, registered, reserved_by) VALUES (?, ?, 0, ?)
           ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, reserved_by = excluded.reserved_by`,
        ).run(input.project, input.displayName, input.id);
      }
      return { kind: 'created', session: this.session(input.id)! };
    });
  }

  /**
   * Whether `principal` may take one more new project name at `now`: names it registered within
   * the window plus names its live sessions reserve stay under `limit`. Checked in the creating
   * transaction, so parallel creations cannot all slip under it.
   */
  private newNameRefusal(principal: string, now: Date, { limit, windowMs }: NewNameLimit): CreateSessionResult | undefined {
    const registeredAt = this.q(
      'SELECT registered_at FROM projects WHERE registered_by = ? AND registered_at > ? ORDER BY registered_at',
    ).pluck().all(principal, now.getTime() - windowMs) as number[];
    const reserved = this.q(
      `SELECT COUNT(*) FROM projects p JOIN sessions s ON s.id = p.reserved_by
       WHERE p.registered = 0 AND s.created_by = ? AND s.status IN ${LIVE_SQL}`,
    ).pluck().get(principal) as number;
    if (registeredAt.length + reserved < limit) return undefined;
    // The oldest registration leaving the window frees a place; reservations free theirs when
    // their session is published (then counted as registered) or canceled.
    const retryAt = new Date((registeredAt[0] ?? now.getTime()) + windowMs);
    return { kind: 'too-many-new-names', limit, registered: registeredAt.length, reserved, retryAt };
  }

  async getSession(id: string): Promise<PublishingSessionRecord | undefined> {
    return this.session(id);
  }

  async getSessionByStageToken(token: string): Promise<PublishingSessionRecord | undefined> {
    const row = this.q('SELECT * FROM sessions WHERE stage_key = ?').get(stageKey(token)) as SessionRow | undefined;
    return row && toSession(row);
  }

  async countLiveSessions(createdBy: string): Promise<number> {
    return this.q(`SELECT COUNT(*) FROM sessions WHERE created_by = ? AND status IN ${LIVE_SQL}`)
      .pluck()
      .get(createdBy) as number;
  }

  async updateSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    patch: { readonly expiresAt?: Date; readonly notices?: readonly string[] },
  ): Promise<PublishingSessionRecord | undefined> {
    if (expect.length === 0) return undefined;
    const row = this.q(
      `UPDATE sessions SET expires_at = COALESCE(?, expires_at), notices = COALESCE(?, notices)
       WHERE id = ? AND status IN (${placeholders(expect.length)}) RETURNING *`,
    ).get(
      patch.expiresAt?.getTime() ?? null,
      patch.notices ? JSON.stringify(patch.notices) : null,
      id,
      ...expect,
    ) as SessionRow | undefined;
    return row && toSession(row);
  }

  /** The returned files are as stored after the cancel (status 'canceled'), with their blobKey. */
  async cancelSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    at: Date,
  ): Promise<{ readonly session: PublishingSessionRecord; readonly files: readonly FileUploadRecord[] } | undefined> {
    if (expect.length === 0) return undefined;
    return this.write(() => {
      const row = this.q(
        `UPDATE sessions SET status = 'canceled', ended_at = ?
         WHERE id = ? AND status IN (${placeholders(expect.length)}) RETURNING *`,
      ).get(at.getTime(), id, ...expect) as SessionRow | undefined;
      if (!row) return undefined;
      const files = this.q(
        `UPDATE files SET status = 'canceled' WHERE session_id = ? AND status <> 'canceled' RETURNING *`,
      ).all(id) as FileRow[];
      this.q('DELETE FROM filename_claims WHERE session_id = ?').run(id);
      // PEP 694: a canceled first-release session deletes the project "as if it were never uploaded".
      this.q('DELETE FROM projects WHERE name = ? AND reserved_by = ? AND registered = 0').run(row.project, id);
      files.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
      return { session: toSession(row), files: files.map(toFile) };
    });
  }

  async publish(
    id: string,
    expect: readonly PublishingSessionStatus[],
    at: Date,
    opts: { readonly defer: boolean },
  ): Promise<PublishResult> {
    return this.write((): PublishResult => {
      const session = this.session(id);
      if (!session) throw new Error(`unknown publishing session ${id}`);
      if (!expect.includes(session.status)) return { kind: 'session-state', status: session.status };

      const files = this.q(
        `SELECT filename, status FROM files WHERE session_id = ? AND status <> 'canceled' ORDER BY filename`,
      ).all(id) as { filename: string; status: FileUploadStatus }[];
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
      this.q('DELETE FROM filename_claims WHERE session_id = ?').run(id);
      if (opts.defer) {
        this.q(
          `INSERT INTO filename_claims (project, filename, session_id, file_id, identity)
           SELECT ?, filename, session_id, id, identity FROM files WHERE session_id = ? AND status <> 'canceled'`,
        ).run(session.project, id);
        const row = this.q(`UPDATE sessions SET status = 'processing' WHERE id = ? RETURNING *`).get(id) as SessionRow;
        return { kind: 'processing', session: toSession(row) };
      }
      const published = this.publishFiles(session, at, `SELECT * FROM files WHERE session_id = ? AND status <> 'canceled'`);
      return { kind: 'published', session: published };
    });
  }

  /**
   * The session's files whose identity is published in the project, claimed by another session's
   * publish, or shared with another file of the session (possible only for rows from before file
   * identities), each with the file name holding it: the authoritative check of PEP 694 "Atomic
   * Publication and Conflicts", made on identities so that no second spelling is ever published.
   */
  private publishConflicts(session: PublishingSessionRecord): { filename: string; holder: string }[] {
    return this.q(
      `SELECT filename, holder FROM (
         SELECT f.filename AS filename, COALESCE(
           (SELECT p.filename FROM published_files p WHERE p.project = :project AND p.identity = f.identity),
           (SELECT c.filename FROM filename_claims c WHERE c.project = :project AND c.identity = f.identity AND c.session_id <> :session),
           (SELECT g.filename FROM files g WHERE g.session_id = :session AND g.status <> 'canceled' AND g.identity = f.identity AND g.id <> f.id)
         ) AS holder
         FROM files f WHERE f.session_id = :session AND f.status <> 'canceled')
       WHERE holder IS NOT NULL ORDER BY filename`,
    ).all({ session: session.id, project: session.project }) as { filename: string; holder: string }[];
  }

  /**
   * Publishes the files selected by `filesSql` (one `?`: the session id) and ends the session as
   * published. The project becomes registered first (a reservation turns permanent, also for an
   * empty session: the PEP FAQ's way to register a name), so published_files' foreign key holds.
   */
  private publishFiles(session: PublishingSessionRecord, at: Date, filesSql: string): PublishingSessionRecord {
    const newName = this.q('SELECT 1 FROM projects WHERE name = ? AND registered = 1').get(session.project) === undefined;
    this.q(
      `INSERT INTO projects (name, display_name, registered, reserved_by) VALUES (?, ?, 1, NULL)
       ON CONFLICT (name) DO UPDATE SET registered = 1, reserved_by = NULL,
         display_name = CASE WHEN projects.registered = 1 THEN projects.display_name ELSE excluded.display_name END`,
    ).run(session.project, session.displayName);
    if (newName) this.recordRegistration(session, at);
    this.q(
      `INSERT INTO published_files (project, filename, display_name, version, size, hashes, blob_key,
         published_at, session_id, file_id, core_metadata, requires_python, identity, core_metadata_sha256)
       SELECT ?, f.filename, ?, ?, f.size, f.hashes, f.blob_key, ?, f.session_id, f.id, f.core_metadata, f.requires_python, f.identity, f.core_metadata_sha256
       FROM (${filesSql}) f`,
    ).run(session.project, session.displayName, session.version, at.getTime(), session.id);
    this.q('DELETE FROM filename_claims WHERE session_id = ?').run(session.id);
    const row = this.q(`UPDATE sessions SET status = 'published', ended_at = ? WHERE id = ? RETURNING *`).get(
      at.getTime(),
      session.id,
    ) as SessionRow;
    return toSession(row);
  }

  /**
   * Claimed files whose identity is published all the same: impossible while claims and published
   * files are checked against each other, but a database from before file identities may hold such
   * a claim, and publishing it would break the unique index and leave the session processing.
   */
  private claimsPublishedMeanwhile(sessionId: string): { filename: string; holder: string }[] {
    return this.q(
      `SELECT filename, holder FROM (
         SELECT f.filename AS filename, COALESCE(
           (SELECT p.filename FROM published_files p WHERE p.project = c.project AND p.identity = f.identity),
           (SELECT g.filename FROM filename_claims d JOIN files g ON g.id = d.file_id
            WHERE d.session_id = c.session_id AND g.identity = f.identity AND g.id <> f.id)
         ) AS holder
         FROM filename_claims c JOIN files f ON f.id = c.file_id WHERE c.session_id = ?)
       WHERE holder IS NOT NULL ORDER BY filename`,
    ).all(sessionId) as { filename: string; holder: string }[];
  }

  /** Who registered a new project name, and when (counted by `newNameRefusal`). */
  private recordRegistration(session: PublishingSessionRecord, at: Date): void {
    this.q('UPDATE projects SET registered_by = ?, registered_at = ? WHERE name = ?').run(session.createdBy, at.getTime(), session.project);
  }

  async settlePublish(
    id: string,
    at: Date,
    outcome:
      | { readonly ok: true }
      | { readonly ok: false; readonly notices: readonly string[]; readonly fileNotices?: Readonly<Record<string, readonly string[]>> },
  ): Promise<PublishingSessionRecord | undefined> {
    return this.write(() => {
      const session = this.session(id);
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
        outcome = { ok: false, notices: [`Publishing failed: already published for this release: ${reasons.join(', ')}. Delete these files and publish again.`] };
      }
      // Failure releases the filenames (PEP 694 "Atomic Publication and Conflicts").
      this.q('DELETE FROM filename_claims WHERE session_id = ?').run(id);
      for (const [filename, notices] of Object.entries(outcome.fileNotices ?? {})) {
        this.q(`UPDATE files SET notices = ? WHERE session_id = ? AND filename = ? AND status <> 'canceled'`).run(
          JSON.stringify(notices),
          id,
          filename,
        );
      }
      const row = this.q(`UPDATE sessions SET status = 'error', notices = ? WHERE id = ? RETURNING *`).get(
        JSON.stringify(outcome.notices),
        id,
      ) as SessionRow;
      return toSession(row);
    });
  }

  // ---- File upload sessions ---------------------------------------------------------------------

  async createFile(input: NewFileUpload, opts: CreateFileLimits): Promise<CreateFileResult> {
    return this.write((): CreateFileResult => {
      const session = this.session(input.sessionId);
      if (!session) throw new Error(`unknown publishing session ${input.sessionId}`);
      if (session.status !== 'open' && session.status !== 'error') return { kind: 'session-state', status: session.status };
      if (this.taken(session.project, input.filename, session.id)) return { kind: 'published', filename: input.filename };
      const holder = this.identityHolder(session.project, input.identity, session.id);
      if (holder !== undefined) return { kind: 'published', filename: holder };

      const existing = this.q(`SELECT * FROM files WHERE session_id = ? AND filename = ? AND status <> 'canceled'`).get(
        session.id,
        input.filename,
      ) as FileRow | undefined;
      if (existing && existing.status !== 'completed') return { kind: 'exists', file: toFile(existing) };
      const twin = this.q(`SELECT * FROM files WHERE session_id = ? AND identity = ? AND filename <> ? AND status <> 'canceled'`).get(
        session.id,
        input.identity,
        input.filename,
      ) as FileRow | undefined;
      if (twin) return { kind: 'same-distribution', file: toFile(twin) };

      const count = this.q(`SELECT COUNT(*) FROM files WHERE session_id = ? AND status <> 'canceled'`)
        .pluck()
        .get(session.id) as number;
      if (count - (existing ? 1 : 0) >= opts.maxFiles) return { kind: 'too-many-files', limit: opts.maxFiles };
      const createdBy = input.createdBy ?? session.createdBy;
      if (opts.maxStagedBytes !== undefined) {
        // The completed file this one replaces stops counting.
        const used = this.stagedBytes(createdBy) - (existing?.created_by === createdBy ? existing.size : 0);
        if (used + input.size > opts.maxStagedBytes) return { kind: 'over-quota', quota: opts.maxStagedBytes, used };
      }

      // Replacing a completed file (PEP 694 "Replacing a Partially or Fully Uploaded File").
      const replaced = existing
        ? toFile(this.q(`UPDATE files SET status = 'canceled' WHERE id = ? RETURNING *`).get(existing.id) as FileRow)
        : null;
      const row = this.q(
        `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at,
           notices, blob_key, attestations, instructions, core_metadata, requires_python, identity, created_by)
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, '[]', NULL, NULL, ?, NULL, NULL, ?, ?) RETURNING *`,
      ).get(
        input.id, input.sessionId, input.filename, input.size, JSON.stringify(input.hashes), input.mechanism,
        input.createdAt.getTime(), input.expiresAt.getTime(), input.instructions ? JSON.stringify(input.instructions) : null,
        input.identity, createdBy,
      ) as FileRow;
      return { kind: 'created', file: toFile(row), replaced };
    });
  }

  async getFile(id: string): Promise<FileUploadRecord | undefined> {
    return this.file(id);
  }

  async listFiles(sessionId: string, opts?: { readonly includeCanceled?: boolean }): Promise<readonly FileUploadRecord[]> {
    const rows = this.q(
      `SELECT * FROM files WHERE session_id = ? ${opts?.includeCanceled ? '' : `AND status <> 'canceled'`}
       ORDER BY created_at, id`,
    ).all(sessionId) as FileRow[];
    return rows.map(toFile);
  }

  async listStagedFiles(sessionId: string): Promise<readonly StagedFile[]> {
    const rows = this.q(
      `SELECT ${STAGED_COLUMNS} FROM files WHERE session_id = ? AND status = 'completed' ORDER BY created_at, id`,
    ).all(sessionId) as Omit<FileRow, 'core_metadata'>[];
    return rows.map((r) => {
      const { coreMetadata: _bytes, ...file } = toFile({ ...r, core_metadata: null });
      return file;
    });
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
      columns.push(['core_metadata', toBlob(patch.coreMetadata)]);
      columns.push(['core_metadata_sha256', patch.coreMetadata === null ? null : metadataSha256(patch.coreMetadata)]);
    }
    if (patch.requiresPython !== undefined) columns.push(['requires_python', patch.requiresPython]);
    const set = columns.length > 0 ? columns.map(([c]) => `${c} = ?`).join(', ') : 'status = status';
    // One statement, so the session check and the file update cannot be split by another writer.
    const sessionCheck = sessionExpect
      ? `AND session_id IN (SELECT id FROM sessions WHERE status IN (${placeholders(sessionExpect.length)}))`
      : '';
    const row = this.q(
      `UPDATE files SET ${set} WHERE id = ? AND status IN (${placeholders(expect.length)}) ${sessionCheck} RETURNING *`,
    ).get(...columns.map(([, v]) => v), id, ...expect, ...(sessionExpect ?? [])) as FileRow | undefined;
    return row && toFile(row);
  }

  // ---- Published namespace ----------------------------------------------------------------------

  async isPublishedProject(project: string): Promise<boolean> {
    return this.q('SELECT 1 FROM projects WHERE name = ? AND registered = 1').get(project) !== undefined;
  }

  async isFilenameTaken(project: string, filename: string): Promise<boolean> {
    return this.taken(project, filename, '');
  }

  async findPublishedIdentity(project: string, identity: string): Promise<string | undefined> {
    return this.identityHolder(project, identity, '');
  }

  /**
   * Every registered project, including one registered by publishing an empty session: the PEP
   * makes the reservation "a permanent registration of the name" at publication, files or not.
   */
  async listPublishedProjects(): Promise<readonly { readonly project: string; readonly displayName: string }[]> {
    return this.q('SELECT name AS project, display_name AS displayName FROM projects WHERE registered = 1 ORDER BY name').all() as {
      project: string;
      displayName: string;
    }[];
  }

  async listPublishedFiles(project: string): Promise<readonly PublishedFile[]> {
    const rows = this.q(`SELECT ${PUBLISHED_COLUMNS} FROM published_files WHERE project = ? ORDER BY version, filename`).all(project) as PublishedRow[];
    return rows.map(toPublished);
  }

  async getPublishedFile(project: string, filename: string): Promise<PublishedFile | undefined> {
    const row = this.q(`SELECT ${PUBLISHED_COLUMNS} FROM published_files WHERE project = ? AND filename = ?`).get(project, filename) as
      | PublishedRow
      | undefined;
    return row && toPublished(row);
  }

  async getPublishedCoreMetadata(project: string, filename: string): Promise<Uint8Array | undefined> {
    const bytes = this.q('SELECT core_metadata FROM published_files WHERE project = ? AND filename = ?').pluck().get(project, filename) as
      | Buffer
      | null
      | undefined;
    return bytes ? new Uint8Array(bytes) : undefined;
  }

  async indexVersion(scope: IndexScope): Promise<number> {
    const version =
      scope.kind === 'projects'
        ? this.q('SELECT projects FROM index_version WHERE id = 1').pluck().get()
        : scope.kind === 'project'
          ? this.q('SELECT files_version FROM projects WHERE name = ?').pluck().get(scope.project)
          : this.q('SELECT files_version FROM sessions WHERE id = ?').pluck().get(scope.sessionId);
    return typeof version === 'number' ? version : 0;
  }

  // ---- Housekeeping -----------------------------------------------------------------------------

  async listExpiredSessions(now: Date): Promise<readonly PublishingSessionRecord[]> {
    const rows = this.q(
      `SELECT * FROM sessions WHERE status IN ('open', 'error') AND expires_at <= ? ORDER BY expires_at, id`,
    ).all(now.getTime()) as SessionRow[];
    return rows.map(toSession);
  }

  async listExpiredFiles(now: Date): Promise<readonly FileUploadRecord[]> {
    const rows = this.q(
      `SELECT f.* FROM files f JOIN sessions s ON s.id = f.session_id
       WHERE f.status = 'pending' AND f.expires_at <= ? AND s.status IN ('open', 'error') ORDER BY f.expires_at, f.id`,
    ).all(now.getTime()) as FileRow[];
    return rows.map(toFile);
  }

  async listProcessing(): Promise<{ readonly sessions: readonly PublishingSessionRecord[]; readonly files: readonly FileUploadRecord[] }> {
    const sessions = this.q(`SELECT * FROM sessions WHERE status = 'processing' ORDER BY created_at, id`).all() as SessionRow[];
    const files = this.q(`SELECT * FROM files WHERE status = 'processing' ORDER BY created_at, id`).all() as FileRow[];
    return { sessions: sessions.map(toSession), files: files.map(toFile) };
  }

  async forgetEndedSessions(before: Date): Promise<number> {
    return this.write(() => {
      const ended = `SELECT id FROM sessions WHERE status IN ('published', 'canceled') AND ended_at < ?`;
      const t = before.getTime();
      // Explicit rather than relying on ON DELETE CASCADE; published_files are kept.
      this.q(`DELETE FROM filename_claims WHERE session_id IN (${ended})`).run(t);
      this.q(`DELETE FROM files WHERE session_id IN (${ended})`).run(t);
      return this.q(`DELETE FROM sessions WHERE id IN (${ended})`).run(t).changes;
    });
  }

  async isBlobReferenced(key: string): Promise<boolean> {
    return (
      this.q(
        `SELECT CASE WHEN EXISTS (SELECT 1 FROM files WHERE blob_key = ?)
           OR EXISTS (SELECT 1 FROM published_files WHERE blob_key = ?) THEN 1 ELSE 0 END`,
      )
        .pluck()
        .get(key, key) === 1
    );
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
