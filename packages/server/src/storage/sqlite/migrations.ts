/**
 * The SQLite store's schema, as versioned steps (`user_version` says how many have run), and the
 * SQL functions those steps call to fill in columns added after rows existed.
 */
import { distributionIdentity } from '@pep694/core';
import Database from 'better-sqlite3';
import { metadataSha256, stageTokenKey } from './rows.js';

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
  // Listings (a session's files on every status request, the index pages) select every column but
  // core_metadata, yet SQLite reads a row's columns in order: a column stored after a large BLOB is
  // reached by walking the BLOB's overflow pages, and requires_python and the columns added since
  // were stored after core_metadata. Moved to the end of the row, the bytes are never read by a
  // listing. A column added to these tables later lands after it again: see the test that keeps
  // core_metadata last.
  `
  ALTER TABLE files ADD COLUMN core_metadata_moved BLOB;
  UPDATE files SET core_metadata_moved = core_metadata WHERE core_metadata IS NOT NULL;
  ALTER TABLE files DROP COLUMN core_metadata;
  ALTER TABLE files RENAME COLUMN core_metadata_moved TO core_metadata;
  ALTER TABLE published_files ADD COLUMN core_metadata_moved BLOB;
  UPDATE published_files SET core_metadata_moved = core_metadata WHERE core_metadata IS NOT NULL;
  ALTER TABLE published_files DROP COLUMN core_metadata;
  ALTER TABLE published_files RENAME COLUMN core_metadata_moved TO core_metadata;
  `,
  // Every file row of a session, canceled ones included, by an index: the count behind
  // limits.maxFileSessionsPerSession runs on every file upload session created, and listing a
  // session's files with the canceled ones would otherwise scan the whole table.
  `
  CREATE INDEX files_session ON files (session_id, created_at);
  `,
  // The PEP 740 attestations of published files, kept with them: the file upload session rows they
  // came from are forgotten after \`retention\`, the provenance a file is served with must not be.
  // A table of its own, so that a project page asking which files have some reads neither
  // published_files' metadata nor more than the rows it names.
  `
  CREATE TABLE published_attestations (
    file_id      TEXT PRIMARY KEY,
    attestations TEXT NOT NULL
  );
  INSERT INTO published_attestations (file_id, attestations)
    SELECT p.file_id, f.attestations FROM published_files p JOIN files f ON f.id = p.file_id WHERE f.attestations IS NOT NULL;
  `,
  // Files of published sessions leave the quota's index. They keep their status (`completed`, as
  // the PEP shows it) until the retention forgets them, and files_staged_by held them all that time:
  // the quota's sum, run on every file upload session created, read every file a principal had
  // uploaded in the last `retention` (7 days by default), on the event loop: 3.4–4.2 ms a create
  // at 8 600 files.
  // Publishing now sets `published`, and the index holds only what a principal has staged.
  // core_metadata moves to the end of the row again (see MIGRATIONS[6]).
  `
  ALTER TABLE files ADD COLUMN published INTEGER NOT NULL DEFAULT 0;
  UPDATE files SET published = 1 WHERE session_id IN (SELECT id FROM sessions WHERE status = 'published');
  DROP INDEX files_staged_by;
  CREATE INDEX files_staged_by ON files (created_by) WHERE published = 0 AND status IN ('pending', 'processing', 'completed');
  ALTER TABLE files ADD COLUMN core_metadata_moved BLOB;
  UPDATE files SET core_metadata_moved = core_metadata WHERE core_metadata IS NOT NULL;
  ALTER TABLE files DROP COLUMN core_metadata;
  ALTER TABLE files RENAME COLUMN core_metadata_moved TO core_metadata;
  `,
  // Lookups that scanned a whole table, found by EXPLAIN QUERY PLAN (sqlite-store-states.test.ts
  // now fails on any scan of sessions, files, projects or filename_claims), the indexes the
  // PostgreSQL store has had from its start:
  // - the reaper's expired files and the recovery's processing sessions and files, which read
  //   every row of the table the store ever kept (until the retention forgets it);
  // - projects.reserved_by, read by the limit on new names at every session created and by the
  //   ON DELETE SET NULL of every session the retention forgets (a scan of every project each);
  // - filename_claims.file_id, read by the ON DELETE CASCADE of every file forgotten.
  `
  CREATE INDEX files_expiry ON files (expires_at, id) WHERE status = 'pending';
  CREATE INDEX files_processing ON files (created_at, id) WHERE status = 'processing';
  CREATE INDEX sessions_processing ON sessions (created_at, id) WHERE status = 'processing';
  CREATE INDEX projects_reserved_by ON projects (reserved_by) WHERE reserved_by IS NOT NULL;
  CREATE INDEX filename_claims_file ON filename_claims (file_id);
  `,
];

/** The identity the migration gives a row written before identities existed (see MIGRATIONS[2]). */
function backfillIdentity(filename: unknown, fileIdentity: (filename: string) => string): string | null {
  if (typeof filename !== 'string') return null;
  try {
    return fileIdentity(filename);
  } catch {
    return `unparsed ${filename}`; // every stored name was validated; should one not parse, it stays unique
  }
}

/** What opening a database needs besides its file name. */
export interface MigrationOptions {
  /**
   * How the migration that gives rows written before file identities existed theirs computes them;
   * default `distributionIdentity` from `@pep694/core`, the function every upload path uses.
   */
  readonly fileIdentity?: (filename: string) => string;
}

/**
 * Brings the file's schema to the latest version, once, under the write lock; refuses a file
 * newer than this code.
 */
export function migrate(db: Database.Database, opts: MigrationOptions = {}): void {
  // Only the migration that adds stage_key calls it; new rows get their key from stageTokenKey().
  db.function('pep694_sha256', { deterministic: true }, (t: unknown) => (typeof t === 'string' ? stageTokenKey(t) : null));
  db.function('pep694_file_identity', { deterministic: true }, (f: unknown) =>
    backfillIdentity(f, opts.fileIdentity ?? distributionIdentity),
  );
  // Only the migration that adds core_metadata_sha256 calls it; new rows get it from updateFile.
  db.function('pep694_sha256_bytes', { deterministic: true }, (b: unknown) => (b instanceof Uint8Array ? metadataSha256(b) : null));
  db.transaction(() => {
    // Read inside the write lock: two processes opening a new file migrate it once.
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this code (${MIGRATIONS.length})`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    if (current !== MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}
