/**
 * The store's schema, as versioned steps. `pep694_schema_migrations` records each version applied;
 * each step runs in its own transaction with its version row, and the whole run holds a
 * session-level advisory lock, so nodes starting at once against a new database migrate it once:
 * the first takes the lock and migrates, the others wait for it and find nothing left to do.
 */
import type { Pool } from 'pg';
import { LIVE_SESSION_STATES, TERMINAL_SESSION_STATES } from '@pep694/core';
import { sqlList } from './sql.js';

/** The advisory lock key every node takes around migrating (an arbitrary constant: "pep694" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x706570363934;

/**
 * Schema steps: entry i is version i+1. Append, never edit, so existing databases migrate forward.
 * Written with the state lists of @pep694/core as they are when the step is written: a step is
 * history, so later changes to the lists need a step of their own.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sessions (
    id            text PRIMARY KEY,
    project       text NOT NULL,
    display_name  text NOT NULL,
    version       text NOT NULL,
    release_key   text NOT NULL,
    status        text NOT NULL CHECK (status IN ('open', 'processing', 'published', 'error', 'canceled')),
    stage_token   text UNIQUE,
    -- Stage tokens are looked up by their sha256 (see stageTokenKey in ./rows.ts).
    stage_key     text UNIQUE,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    reserves_name boolean NOT NULL,
    notices       json NOT NULL,
    -- Bumped by a trigger whenever the session's files change: keys the stage preview's page cache.
    files_version bigint NOT NULL DEFAULT 0
  );
  -- PEP 694 "Multiple Session Creation Requests": one live session per name+version.
  CREATE UNIQUE INDEX sessions_live_release ON sessions (project, release_key) WHERE status IN ${sqlList(LIVE_SESSION_STATES)};
  CREATE INDEX sessions_live_creator ON sessions (created_by) WHERE status IN ${sqlList(LIVE_SESSION_STATES)};
  CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE status IN ('open', 'error');
  CREATE INDEX sessions_ended ON sessions (ended_at) WHERE status IN ${sqlList(TERMINAL_SESSION_STATES)};
  CREATE INDEX sessions_processing ON sessions (created_at) WHERE status = 'processing';

  -- A project is registered once a release is published (permanent), or only reserved by the live
  -- session creating its first release (PEP 694 "Create a Publishing Session"); reserved-only rows
  -- are invisible to the index.
  CREATE TABLE projects (
    name          text PRIMARY KEY,
    display_name  text NOT NULL,
    registered    boolean NOT NULL,
    reserved_by   text REFERENCES sessions (id) ON DELETE SET NULL,
    -- Who registered the name and when, for the per-principal limit on new names.
    registered_by text,
    registered_at timestamptz,
    files_version bigint NOT NULL DEFAULT 0
  );
  CREATE INDEX projects_registered_by ON projects (registered_by, registered_at) WHERE registered_by IS NOT NULL;
  CREATE INDEX projects_reserved_by ON projects (reserved_by) WHERE reserved_by IS NOT NULL;

  CREATE TABLE files (
    id                   text PRIMARY KEY,
    session_id           text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    filename             text NOT NULL,
    size                 bigint NOT NULL,
    hashes               json NOT NULL,
    mechanism            text NOT NULL,
    status               text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'error', 'canceled')),
    created_at           timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    notices              json NOT NULL,
    blob_key             text,
    attestations         json,
    instructions         json,
    requires_python      text,
    -- distributionIdentity(filename) from @pep694/core: no two spellings of one distribution.
    identity             text NOT NULL,
    -- Whose staged-bytes quota the file counts against.
    created_by           text NOT NULL,
    core_metadata_sha256 text,
    -- Large values live out of line (TOAST): listings that leave the column out never read them.
    core_metadata        bytea
  );
  -- One live file upload session per filename in a publishing session; canceled ones stay as history.
  CREATE UNIQUE INDEX files_live_name ON files (session_id, filename) WHERE status <> 'canceled';
  CREATE INDEX files_live_identity ON files (session_id, identity) WHERE status <> 'canceled';
  CREATE INDEX files_session ON files (session_id, created_at, id);
  CREATE INDEX files_blob ON files (blob_key) WHERE blob_key IS NOT NULL;
  CREATE INDEX files_staged_by ON files (created_by) WHERE status IN ('pending', 'processing', 'completed');
  CREATE INDEX files_expiry ON files (expires_at) WHERE status = 'pending';
  CREATE INDEX files_processing ON files (created_at) WHERE status = 'processing';

  -- The published namespace. No foreign key to sessions or files: published files outlive the
  -- session rows that forgetEndedSessions deletes, so they carry their own copy of the data.
  CREATE TABLE published_files (
    project              text NOT NULL REFERENCES projects (name),
    filename             text NOT NULL,
    display_name         text NOT NULL,
    version              text NOT NULL,
    size                 bigint NOT NULL,
    hashes               json NOT NULL,
    blob_key             text NOT NULL,
    published_at         timestamptz NOT NULL,
    session_id           text NOT NULL,
    file_id              text NOT NULL,
    requires_python      text,
    identity             text NOT NULL,
    core_metadata_sha256 text,
    core_metadata        bytea,
    PRIMARY KEY (project, filename)
  );
  CREATE UNIQUE INDEX published_identity ON published_files (project, identity);
  CREATE INDEX published_blob ON published_files (blob_key);

  -- Filenames held by a deferred publish (PEP 694 "Atomic Publication and Conflicts"): taken
  -- exactly as if published until the publish settles.
  CREATE TABLE filename_claims (
    project    text NOT NULL,
    filename   text NOT NULL,
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    file_id    text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    identity   text NOT NULL,
    PRIMARY KEY (project, filename)
  );
  CREATE UNIQUE INDEX filename_claims_identity ON filename_claims (project, identity);
  CREATE INDEX filename_claims_session ON filename_claims (session_id);
  CREATE INDEX filename_claims_file ON filename_claims (file_id);

  -- Change counters of what the index shows, bumped by triggers in the transaction of every
  -- change whatever statement makes it; every node reads the same values (page cache keys).
  CREATE TABLE index_version (id integer PRIMARY KEY CHECK (id = 1), projects bigint NOT NULL);
  INSERT INTO index_version (id, projects) VALUES (1, 0);

  CREATE FUNCTION pep694_bump_projects() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN UPDATE index_version SET projects = projects + 1 WHERE id = 1; RETURN NULL; END $$;
  CREATE TRIGGER index_projects_change AFTER INSERT OR DELETE OR UPDATE OF name, display_name, registered ON projects
    FOR EACH ROW EXECUTE FUNCTION pep694_bump_projects();

  CREATE FUNCTION pep694_bump_project_files() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP <> 'INSERT' THEN UPDATE projects SET files_version = files_version + 1 WHERE name = OLD.project; END IF;
    IF TG_OP <> 'DELETE' THEN UPDATE projects SET files_version = files_version + 1 WHERE name = NEW.project; END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER index_published_change AFTER INSERT OR UPDATE OR DELETE ON published_files
    FOR EACH ROW EXECUTE FUNCTION pep694_bump_project_files();

  CREATE FUNCTION pep694_bump_session_files() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP <> 'INSERT' THEN UPDATE sessions SET files_version = files_version + 1 WHERE id = OLD.session_id; END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.session_id <> OLD.session_id) THEN
      UPDATE sessions SET files_version = files_version + 1 WHERE id = NEW.session_id;
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER index_files_change
    AFTER INSERT OR DELETE OR UPDATE OF session_id, filename, size, hashes, status, created_at, blob_key, core_metadata_sha256, requires_python
    ON files FOR EACH ROW EXECUTE FUNCTION pep694_bump_session_files();

  -- Leases on work that must run on one node at a time (HousekeepingStore.acquireLease): expiry
  -- by the database's clock, the one every node shares.
  CREATE TABLE work_leases (
    key        text PRIMARY KEY,
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL
  );
  `,
  // The PEP 740 attestations of published files, kept with them: the file upload session rows they
  // came from are forgotten after `retention`, the provenance a file is served with must not be.
  // A table of its own, so that a project page asking which files have some reads neither
  // published_files' metadata nor more than the rows it names. Filled from the file rows of the
  // files already published (those not yet forgotten).
  `
  CREATE TABLE published_attestations (
    file_id      text PRIMARY KEY,
    attestations json NOT NULL
  );
  INSERT INTO published_attestations (file_id, attestations)
    SELECT p.file_id, f.attestations FROM published_files p JOIN files f ON f.id = p.file_id WHERE f.attestations IS NOT NULL;
  `,
  // Files of published sessions leave the quota's index. They keep their status (`completed`, as
  // the PEP shows it) until the retention forgets them, and files_staged_by held them all that time:
  // the quota's sum, run on every file upload session created, read every file a principal had
  // uploaded in the last `retention` (7 days by default). Publishing now sets `published`, and the
  // index holds only what a principal has staged.
  `
  ALTER TABLE files ADD COLUMN published boolean NOT NULL DEFAULT false;
  UPDATE files SET published = true WHERE session_id IN (SELECT id FROM sessions WHERE status = 'published');
  DROP INDEX files_staged_by;
  CREATE INDEX files_staged_by ON files (created_by) WHERE NOT published AND status IN ('pending', 'processing', 'completed');
  `,
];

/**
 * Brings the database's schema to the latest version, once, however many nodes call it at the
 * same time; refuses a database newer than this code.
 */
export async function migrate(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    // Session-level: held across the steps' transactions, released below or when the connection dies.
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS pep694_schema_migrations (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM pep694_schema_migrations');
      const current = rows[0]?.v ?? 0;
      if (current > MIGRATIONS.length) {
        throw new Error(`database schema version ${current} is newer than this code (${MIGRATIONS.length})`);
      }
      for (let v = current; v < MIGRATIONS.length; v++) {
        await client.query('BEGIN');
        try {
          await client.query(MIGRATIONS[v]!);
          await client.query('INSERT INTO pep694_schema_migrations (version) VALUES ($1)', [v + 1]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}
