// What is particular to SQLite: pragmas, migrations, the schema's constraints, rows changed by
// hand, a constraint firing despite the checks, and races and crashes between processes. The
// rules of the SessionStore ports are checked by the conformance suite on this store
// (sqlite-store.conformance.test.ts).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { distributionIdentity, type NewFileUpload, type NewPublishingSession } from '@pep694/core';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { againWhileBusy } from './sqlite/connection.js';
import { FORGET_BATCH } from './sqlite/housekeeping.js';
import { MIGRATIONS } from './sqlite/migrations.js';
import { SqliteSessionStore } from './sqlite/store.js';
import {
  at,
  closeTempStore,
  FILES_PUBLISHED_MIGRATION,
  newFile,
  newSession,
  openTempStore,
  storeSteps,
  UNDO_FILES_PUBLISHED,
} from './sqlite-test-support.js';

let dir: string;
let dbFile: string;
let store: SqliteSessionStore;
beforeEach(() => {
  ({ dir, dbFile, store } = openTempStore('pep694-sqlite-'));
});
afterEach(() => closeTempStore(store, dir));
const { created, addFile, addCompleted, registered } = storeSteps(() => store);

/** A second connection, to poke the schema directly. */
function raw(): Database.Database {
  const db = new Database(dbFile);
  db.pragma('busy_timeout = 5000');
  return db;
}

/** The store's own connection (see ./sqlite/connection.ts). */
const internalConnection = (s: SqliteSessionStore) =>
  (s as unknown as { connection: { db: Database.Database; prepared(sql: string): unknown } }).connection;
const internalDb = (s: SqliteSessionStore) => internalConnection(s).db;

/** A database file at schema `version`, as an older release of the store left it (open connection). */
function oldSchemaFile(version: number): Database.Database {
  const db = raw();
  db.function('pep694_sha256', (t: unknown) => (typeof t === 'string' ? createHash('sha256').update(t).digest('hex') : null));
  for (const step of MIGRATIONS.slice(0, version)) db.exec(step);
  db.pragma(`user_version = ${version}`);
  return db;
}
/** The migration that adds core_metadata_sha256 and the index counters (MIGRATIONS[5]). */
const INDEX_MIGRATION = 5;
/** Takes a file at the current schema back to the one before the index columns (before core_metadata_sha256 and the index counters). */
const UNDO_INDEX_SCHEMA = `${UNDO_FILES_PUBLISHED}
  DROP TRIGGER index_projects_insert; DROP TRIGGER index_projects_update; DROP TRIGGER index_projects_delete;
  DROP TRIGGER index_published_insert; DROP TRIGGER index_published_update; DROP TRIGGER index_published_delete;
  DROP TRIGGER index_files_insert; DROP TRIGGER index_files_update; DROP TRIGGER index_files_delete;
  DROP TABLE index_version;
  ALTER TABLE projects DROP COLUMN files_version; ALTER TABLE sessions DROP COLUMN files_version;
  ALTER TABLE files DROP COLUMN core_metadata_sha256; ALTER TABLE published_files DROP COLUMN core_metadata_sha256;
  DROP INDEX files_session; /* added by a later migration, which runs again after this one */
  DROP TABLE published_attestations; /* likewise */`;

describe('setup', () => {
  it('uses WAL, synchronous NORMAL (the group commit syncs), foreign keys, a busy timeout and a schema version', () => {
    const db = internalDb(store);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL: ./sqlite/wal-sync.ts fsyncs the WAL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    const other = raw();
    expect(other.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    other.close();
  });

  it('looks stage tokens up by their sha256, never by the token itself (no timing leak in the index)', async () => {
    const s = await created({ stageToken: 'stage-token-abc' });
    const db = raw();
    const row = db.prepare('SELECT stage_key FROM sessions WHERE id = ?').get(s.id) as { stage_key: string };
    db.close();
    expect(row.stage_key).toBe(createHash('sha256').update('stage-token-abc').digest('hex'));
    expect(await store.getSessionByStageToken('stage-token-abc')).toMatchObject({ id: s.id });
    expect(await store.getSessionByStageToken('stage-token-abd')).toBeUndefined();
    expect(await store.getSessionByStageToken(row.stage_key)).toBeUndefined(); // the key is not a token
  });

  it('migrates a schema-1 file: existing stage tokens get their lookup key', async () => {
    await store.close();
    fs.rmSync(dbFile);
    const db = oldSchemaFile(1);
    db.exec(
      `INSERT INTO sessions VALUES ('s-old', 'foo', 'Foo', '1.0', '1', 'open', 'old-token', 'alice', 0, ${at(60).getTime()}, NULL, 1, '[]')`,
    );
    db.close();
    store = new SqliteSessionStore(dbFile);
    expect(await store.getSessionByStageToken('old-token')).toMatchObject({ id: 's-old' });
  });

  it("migrates a file from before files.published: the files of published sessions leave the quota's index", async () => {
    const s = await created();
    const done = await addCompleted(s.id, 'foo-1.0.tar.gz');
    await store.publish(s.id, ['open'], at(2), { defer: false });
    const live = await created({ version: '2.0', releaseKey: '2' });
    const pending = await addFile(live.id, 'foo-2.0.tar.gz');
    await store.close();
    const db = raw();
    db.exec(UNDO_FILES_PUBLISHED);
    db.pragma(`user_version = ${FILES_PUBLISHED_MIGRATION}`);
    db.close();
    store = new SqliteSessionStore(dbFile);
    const check = raw();
    expect(check.prepare('SELECT id, published FROM files ORDER BY id').all()).toEqual(
      [
        { id: done.id, published: 1 },
        { id: pending.id, published: 0 },
      ].sort((x, y) => (x.id < y.id ? -1 : 1)),
    );
    expect(check.prepare(`SELECT name FROM pragma_table_info('files') ORDER BY cid`).pluck().all().at(-1)).toBe('core_metadata');
    check.close();
    expect(await store.getFile(done.id)).toEqual(done); // the metadata moved with its row
  });

  it('keeps data across close and reopen, without migrating again', async () => {
    const s = await created({ stageToken: 'tok' });
    const f = await addCompleted(s.id, 'foo-1.0.tar.gz');
    await store.publish(s.id, ['open'], at(2), { defer: false });
    await store.close();
    store = new SqliteSessionStore(dbFile);
    expect(await store.getSession(s.id)).toMatchObject({ status: 'published', endedAt: at(2) });
    expect(await store.getFile(f.id)).toEqual(f);
    expect(await store.getPublishedFile('foo', 'foo-1.0.tar.gz')).toMatchObject({ fileId: f.id, blobKey: f.blobKey });
    expect(await store.isPublishedProject('foo')).toBe(true);
  });

  it('refuses a file with a newer schema', async () => {
    await store.close();
    const db = raw();
    db.pragma('user_version = 99');
    db.close();
    expect(() => new SqliteSessionStore(dbFile)).toThrow(/newer/);
    store = new SqliteSessionStore(path.join(dir, 'other.sqlite')); // for afterEach
  });
});

describe('uniqueness constraints in the schema', () => {
  const insertSession = (db: Database.Database, id: string, status: string, releaseKey = '1', token: string | null = null) =>
    db
      .prepare(`INSERT INTO sessions VALUES (?, 'foo', 'Foo', '1.0', ?, ?, ?, 'alice', 0, 0, NULL, 0, '[]', NULL, 0)`)
      .run(id, releaseKey, status, token);

  it('one live session per project and release key', () => {
    const db = raw();
    insertSession(db, 'a', 'open');
    expect(() => insertSession(db, 'b', 'error')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }));
    insertSession(db, 'c', 'canceled'); // terminal sessions do not count
    insertSession(db, 'd', 'published');
    insertSession(db, 'e', 'open', '2');
    db.close();
  });

  it('stage tokens are unique, and null for any number of sessions', () => {
    const db = raw();
    insertSession(db, 'a', 'canceled', '1', 'tok');
    expect(() => insertSession(db, 'b', 'canceled', '1', 'tok')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }));
    insertSession(db, 'c', 'canceled', '1', null);
    insertSession(db, 'd', 'canceled', '1', null);
    db.close();
  });

  it('one non-canceled file per session and filename', () => {
    const db = raw();
    insertSession(db, 's', 'open');
    const insertFile = (id: string, status: string) =>
      db
        .prepare(
          `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices)
                  VALUES (?, 's', 'foo-1.0.tar.gz', 1, '{}', 'm', ?, 0, 0, '[]')`,
        )
        .run(id, status);
    insertFile('f1', 'canceled');
    insertFile('f2', 'canceled');
    insertFile('f3', 'completed');
    expect(() => insertFile('f4', 'pending')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }));
    db.close();
  });

  it('one published file per project and filename, and one claim per project and filename', async () => {
    await registered();
    const db = raw();
    const publish = (identity: string) =>
      db
        .prepare(
          `INSERT INTO published_files (project, filename, display_name, version, size, hashes, blob_key, published_at, session_id, file_id, identity)
                  VALUES ('foo', 'foo-1.0.tar.gz', 'Foo', '1.0', 1, '{}', 'b', 0, 's', 'f', ?)`,
        )
        .run(identity);
    publish('sdist foo 1');
    expect(() => publish('another identity')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }));

    insertSession(db, 's', 'processing', '9');
    db.prepare(
      `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices)
                VALUES ('f', 's', 'foo-2.0.tar.gz', 1, '{}', 'm', 'completed', 0, 0, '[]')`,
    ).run();
    const claim = (identity: string) =>
      db
        .prepare(
          `INSERT INTO filename_claims (project, filename, session_id, file_id, identity) VALUES ('foo', 'foo-2.0.tar.gz', 's', 'f', ?)`,
        )
        .run(identity);
    claim('sdist foo 2');
    expect(() => claim('another identity')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }));
    db.close();
  });

  // PEP 694 "Atomic Publication and Conflicts": "never publishes two files with the same name for
  // the same release"; two spellings of one distribution are one file to an installer.
  it('one published file and one claim per project and file identity, whatever the spelling', async () => {
    await registered();
    const db = raw();
    const publish = (filename: string, project = 'foo') =>
      db
        .prepare(
          `INSERT INTO published_files (project, filename, display_name, version, size, hashes, blob_key, published_at, session_id, file_id, identity)
                  VALUES (?, ?, 'Foo', '1.0', 1, '{}', 'b', 0, 's', 'f', ?)`,
        )
        .run(project, filename, distributionIdentity(filename));
    publish('foo-1.0-py3-none-any.whl');
    expect(() => publish('Foo-1.0-py3-none-any.whl')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }));
    expect(() => publish('foo-1.0.0-py3-none-any.whl')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }));
    publish('foo-1.0-1-py3-none-any.whl'); // a build tag is another file
    await registered('bar');
    publish('foo-1.0-py3-none-any.whl', 'bar'); // another project's namespace

    insertSession(db, 's', 'processing', '9');
    for (const [id, name] of [
      ['f1', 'foo-2.0.tar.gz'],
      ['f2', 'Foo-2.0.0.tar.gz'],
    ]) {
      db.prepare(
        `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices)
                  VALUES (?, 's', ?, 1, '{}', 'm', 'completed', 0, 0, '[]')`,
      ).run(id, name);
    }
    const claim = (fileId: string, filename: string) =>
      db
        .prepare(`INSERT INTO filename_claims (project, filename, session_id, file_id, identity) VALUES ('foo', ?, 's', ?, ?)`)
        .run(filename, fileId, distributionIdentity(filename));
    claim('f1', 'foo-2.0.tar.gz');
    expect(() => claim('f2', 'Foo-2.0.0.tar.gz')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }));
    db.close();
  });

  it('one project row per normalized name', async () => {
    await created();
    const db = raw();
    expect(() =>
      db.prepare(`INSERT INTO projects (name, display_name, registered, reserved_by) VALUES ('foo', 'FOO', 1, NULL)`).run(),
    ).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }));
    db.close();
  });
});

describe("state changed behind the store's back", () => {
  it('takes over a reservation whose holder is no longer live', async () => {
    const first = await created();
    const db = raw();
    db.prepare(`UPDATE sessions SET status = 'canceled' WHERE id = ?`).run(first.id); // bypassing cancelSession
    db.close();
    const second = await created({ version: '2.0', releaseKey: '2', displayName: 'FOO' });
    expect(second.reservesName).toBe(true);
    expect((await store.createSession(newSession({ version: '3.0', releaseKey: '3', createdBy: 'bob' }))).kind).toBe('name-reserved');
  });

  it('publishes even if the project row went missing', async () => {
    const s = await created();
    await addCompleted(s.id, 'foo-1.0.tar.gz');
    const db = raw();
    db.prepare(`DELETE FROM projects WHERE name = 'foo'`).run(); // bypassing the store
    db.close();
    expect((await store.publish(s.id, ['open'], at(1), { defer: false })).kind).toBe('published');
    expect(await store.listPublishedProjects()).toEqual([{ project: 'foo', displayName: 'Foo' }]);
  });
});

describe('a constraint that fires despite the checks', () => {
  /** Blinds one check, once, as if another process had committed right after it read. */
  function blindOnce(match: string, answer: unknown) {
    const internals = internalConnection(store);
    const real = internals.prepared.bind(internals);
    let armed = true;
    vi.spyOn(internals, 'prepared').mockImplementation((sql: string) => {
      if (armed && sql.includes(match)) {
        armed = false;
        return { get: () => answer, all: () => answer, pluck: () => ({ get: () => answer, all: () => answer }) };
      }
      return real(sql);
    });
  }

  it("maps a lost session creation race to 'exists' with the winner", async () => {
    await registered(); // so that nothing but the unique index stands in the way
    const other = new SqliteSessionStore(dbFile);
    const winner = await created({}, other);
    await other.close();
    blindOnce('release_key = ?', undefined);
    expect(await store.createSession(newSession())).toEqual({ kind: 'exists', session: winner });
  });

  it("maps a lost publish race to 'conflict'", async () => {
    await registered();
    const a = await created({ releaseKey: '1' });
    const b = await created({ releaseKey: '2' });
    await addCompleted(a.id, 'foo-1.0.tar.gz');
    await addCompleted(b.id, 'foo-1.0.tar.gz');
    await store.publish(a.id, ['open'], at(1), { defer: false });
    blindOnce('AS holder', []);
    expect(await store.publish(b.id, ['open'], at(2), { defer: false })).toEqual({
      kind: 'conflict',
      filenames: ['foo-1.0.tar.gz'],
      conflictsWith: { 'foo-1.0.tar.gz': 'foo-1.0.tar.gz' },
    });
    expect((await store.getSession(b.id))?.status).toBe('open'); // the failed attempt was rolled back
  });

  it('lets a genuine duplicate (same id twice) fail', async () => {
    await registered();
    const s = await created();
    await expect(store.createSession(newSession({ id: s.id, releaseKey: '2' }))).rejects.toThrow(/UNIQUE|PRIMARY/);
  });
});

// ---- Separate processes -------------------------------------------------------------------------

/**
 * Children run the current source, transpiled (types only stripped) into the temp dir, so the
 * test never runs against a stale dist; better-sqlite3 and @pep694/core (its built entry, as this
 * process loads it) are imported by absolute path from there.
 */
function writeChildScript(): string {
  const require = createRequire(import.meta.url);
  const corePackage = require.resolve('@pep694/core/package.json');
  const coreMain = (JSON.parse(fs.readFileSync(corePackage, 'utf8')) as { main: string }).main;
  const coreUrl = pathToFileURL(path.join(path.dirname(corePackage), coreMain)).href;
  const sources = new URL('./sqlite/', import.meta.url);
  fs.mkdirSync(path.join(dir, 'sqlite'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}'); // so the .js files are ES modules
  for (const name of fs.readdirSync(sources).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const source = fs.readFileSync(fileURLToPath(new URL(name, sources)), 'utf8');
    const js = ts
      .transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
      .outputText.replace(/(['"])better-sqlite3\1/, JSON.stringify(pathToFileURL(require.resolve('better-sqlite3')).href))
      .replace(/(['"])@pep694\/core\1/g, JSON.stringify(coreUrl));
    expect(js).not.toMatch(/from ['"]@pep694/); // no other workspace import the child could not resolve
    fs.writeFileSync(path.join(dir, 'sqlite', name.replace(/\.ts$/, '.js')), js);
  }
  const child = path.join(dir, 'child.mjs');
  fs.writeFileSync(
    child,
    `
import { writeSync } from 'node:fs';
import { SqliteSessionStore } from './sqlite/store.js';
const [dbFile, opJson] = process.argv.slice(2);
const op = JSON.parse(opJson);
const store = new SqliteSessionStore(dbFile);
const dates = (o) => ({ ...o, createdAt: new Date(o.createdAt), expiresAt: new Date(o.expiresAt) });
const delay = op.startAt - Date.now();
if (delay > 0) await new Promise((r) => setTimeout(r, delay));
let out;
if (op.kind === 'createSession') {
  const r = await store.createSession(dates(op.session));
  out = { kind: r.kind, id: r.session.id };
} else if (op.kind === 'publish') {
  out = { kind: (await store.publish(op.id, ['open'], new Date(op.at), { defer: false })).kind };
} else if (op.kind === 'publish-then-die') {
  const s = (await store.createSession(dates(op.session))).session;
  const f = (await store.createFile(dates({ ...op.file, sessionId: s.id }), { maxFiles: 10 })).file;
  await store.updateFile(f.id, ['pending'], { status: 'completed', blobKey: 'blob/durable' });
  const r = await store.publish(s.id, ['open'], new Date(op.at), { defer: false });
  writeSync(1, JSON.stringify({ kind: r.kind }));
  process.kill(process.pid, 'SIGKILL'); // no close(), no exit handlers: only what was committed survives
}
writeSync(1, JSON.stringify(out));
await store.close();
`,
  );
  return child;
}

function runChild(script: string, op: unknown): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, dbFile, JSON.stringify(op)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

const asJson = (s: NewPublishingSession | NewFileUpload) => ({ ...s, createdAt: s.createdAt.getTime(), expiresAt: s.expiresAt.getTime() });

describe('separate processes', () => {
  it('exactly one of several processes creates the same name+version session', async () => {
    const script = writeChildScript();
    const startAt = Date.now() + 1500; // all children start together, once loaded
    const runs = await Promise.all(
      [1, 2, 3, 4].map(() => runChild(script, { kind: 'createSession', startAt, session: asJson(newSession()) })),
    );
    for (const r of runs) expect(r.err).toBe('');
    const results = runs.map((r) => JSON.parse(r.out) as { kind: string; id: string });
    expect(results.filter((r) => r.kind === 'created')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'exists')).toHaveLength(3);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect((await store.getSession(results[0]!.id))?.status).toBe('open');
  });

  /** Sessions of releases 1, 2 and 3 of foo, one completed file each (`filenames`), published at once by a process each. */
  async function expectOneOfThreeProcessesPublishes(filenames: readonly [string, string, string]): Promise<void> {
    await registered();
    const ids: string[] = [];
    for (const [i, name] of filenames.entries()) {
      const key = String(i + 1);
      const s = await created({ releaseKey: key, version: `${key}.0` });
      await addCompleted(s.id, name);
      ids.push(s.id);
    }
    const script = writeChildScript();
    const startAt = Date.now() + 1500;
    const runs = await Promise.all(ids.map((id) => runChild(script, { kind: 'publish', startAt, id, at: at(5).getTime() })));
    for (const r of runs) expect(r.err).toBe('');
    expect(runs.map((r) => (JSON.parse(r.out) as { kind: string }).kind).sort()).toEqual(['conflict', 'conflict', 'published']);
    expect(await store.listPublishedFiles('foo')).toHaveLength(1);
  }

  it('exactly one of several processes publishes the same filename', async () => {
    await expectOneOfThreeProcessesPublishes(['foo-1.0.tar.gz', 'foo-1.0.tar.gz', 'foo-1.0.tar.gz']);
  });

  // Issue #21: another spelling of one distribution is the same file (PEP 694 "Atomic Publication and Conflicts").
  it('exactly one of several processes publishes one distribution under different spellings', async () => {
    await expectOneOfThreeProcessesPublishes(['foo-1.0-py3-none-any.whl', 'Foo-1.0-py3-none-any.whl', 'foo-1.0.0-py3-none-any.whl']);
  });

  it('a publish that resolved survives a SIGKILL of its process', async () => {
    const script = writeChildScript();
    const session = newSession({ project: 'durable', displayName: 'Durable' });
    const file = newFile('ignored', 'durable-1.0.tar.gz');
    const run = await runChild(script, {
      kind: 'publish-then-die',
      startAt: 0,
      session: asJson(session),
      file: asJson(file),
      at: at(7).getTime(),
    });
    expect(run.err).toBe('');
    expect(run.signal).toBe('SIGKILL');
    expect(JSON.parse(run.out)).toEqual({ kind: 'published' });

    await store.close();
    store = new SqliteSessionStore(dbFile);
    expect(await store.getSession(session.id)).toMatchObject({ status: 'published', endedAt: at(7) });
    expect(await store.getPublishedFile('durable', 'durable-1.0.tar.gz')).toMatchObject({ blobKey: 'blob/durable', fileId: file.id });
    expect(await store.isPublishedProject('durable')).toBe(true);
  });
});

describe('opening a new file from two threads at the same moment', () => {
  // Switching a new file to WAL needs its exclusive lock; SQLite answers one of two connections
  // that both hold its shared lock BUSY at once, without the busy handler (againWhileBusy). Two
  // threads released together failed 28 times in 500 rounds before; the bench's index section
  // (two processes on one new file) failed 1 time in 300.
  it('againWhileBusy: BUSY again until it passes or the time is up; any other error at once', () => {
    const busy = () => new Database.SqliteError('database is locked', 'SQLITE_BUSY');
    let calls = 0;
    expect(
      againWhileBusy(() => {
        if (++calls < 4) throw busy();
        return 'wal';
      }, 5000),
    ).toBe('wal');
    expect(calls).toBe(4);
    calls = 0;
    const t0 = Date.now();
    expect(() =>
      againWhileBusy(() => {
        calls++;
        throw busy();
      }, 100),
    ).toThrow(/locked/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(calls).toBeGreaterThan(2);
    calls = 0;
    expect(() =>
      againWhileBusy(() => {
        calls++;
        throw new Database.SqliteError('disk I/O error', 'SQLITE_IOERR');
      }, 5000),
    ).toThrow(/disk/);
    expect(calls).toBe(1);
  });

  it('both open it, in each of 200 rounds', { timeout: 120_000 }, async () => {
    writeChildScript(); // the current source, as the children's
    const storeUrl = pathToFileURL(path.join(dir, 'sqlite', 'store.js')).href;
    const ROUNDS = 200;
    // [0]: the round released, [1]: threads ready, [2]: threads done.
    const flags = new Int32Array(new SharedArrayBuffer(12));
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const flags = new Int32Array(workerData.flags);
      import(workerData.storeUrl).then(async ({ SqliteSessionStore }) => {
        const failures = [];
        for (let r = 1; r <= workerData.rounds; r++) {
          Atomics.add(flags, 1, 1);
          while (Atomics.load(flags, 0) < r) Atomics.wait(flags, 0, r - 1, 10);
          try {
            await new SqliteSessionStore(workerData.dir + '/new-' + r + '.sqlite').close();
          } catch (err) {
            failures.push(String(err.code ?? err));
          }
          Atomics.add(flags, 2, 1);
        }
        parentPort.postMessage(failures);
      });`;
    const threads = [0, 1].map(() => new Worker(code, { eval: true, workerData: { flags: flags.buffer, storeUrl, dir, rounds: ROUNDS } }));
    const failures = Promise.all(
      threads.map((w) => new Promise<string[]>((resolve, reject) => w.on('message', resolve).on('error', reject))),
    );
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    try {
      for (let r = 1; r <= ROUNDS; r++) {
        while (Atomics.load(flags, 1) < 2 * r) await turn();
        Atomics.store(flags, 0, r);
        Atomics.notify(flags, 0);
        while (Atomics.load(flags, 2) < 2 * r) await turn();
      }
      expect((await failures).flat()).toEqual([]);
    } finally {
      await Promise.all(threads.map((w) => w.terminate()));
    }
  });
});

describe('index pages (issue #21): the metadata digest stored with the file, change counters in the database', () => {
  const version = (scope: Parameters<SqliteSessionStore['indexVersion']>[0], s: SqliteSessionStore = store) => s.indexVersion(scope);

  it('migrates a file from before the index columns: stored metadata gets its digest, the counters start', async () => {
    const s = await created();
    const f = await addCompleted(s.id, 'foo-1.0.tar.gz');
    await store.publish(s.id, ['open'], at(2), { defer: false });
    await store.close();
    const db = raw();
    db.exec(`${UNDO_INDEX_SCHEMA} PRAGMA user_version = ${INDEX_MIGRATION};`);
    db.close();
    store = new SqliteSessionStore(dbFile);
    const digest = createHash('sha256').update('Meta').digest('hex');
    expect((await store.getFile(f.id))?.coreMetadataSha256).toBe(digest);
    expect((await store.getPublishedFile('foo', 'foo-1.0.tar.gz'))?.coreMetadataSha256).toBe(digest);
    const before = await version({ kind: 'project', project: 'foo' });
    const next = await created({ releaseKey: '2', version: '2.0' });
    await addCompleted(next.id, 'foo-2.0.tar.gz');
    await store.publish(next.id, ['open'], at(3), { defer: false });
    expect(await version({ kind: 'project', project: 'foo' })).toBeGreaterThan(before);
  });

  it('a project counter moves when its published files change, and only then; the list counter when a project registers', async () => {
    await registered('bar');
    const projects0 = await version({ kind: 'projects' });
    const s = await created();
    const f = await addCompleted(s.id, 'foo-1.0.tar.gz');
    const foo0 = await version({ kind: 'project', project: 'foo' });
    const bar0 = await version({ kind: 'project', project: 'bar' });
    await store.publish(s.id, ['open'], at(2), { defer: false });
    const foo1 = await version({ kind: 'project', project: 'foo' });
    expect(foo1).toBeGreaterThan(foo0);
    expect(await version({ kind: 'project', project: 'bar' })).toBe(bar0);
    expect(await version({ kind: 'projects' })).toBeGreaterThan(projects0);
    // Work on another session's files does not touch the published page.
    const next = await created({ releaseKey: '2', version: '2.0' });
    await addCompleted(next.id, 'foo-2.0.tar.gz');
    expect(await version({ kind: 'project', project: 'foo' })).toBe(foo1);
    expect(await version({ kind: 'project', project: 'nope' })).toBe(0);
    expect(f.coreMetadataSha256).toBe(createHash('sha256').update('Meta').digest('hex'));
  });

  it("a session's counter moves on completion, replacement, delete and cancel, not on bookkeeping", async () => {
    const s = await created();
    const stage = () => version({ kind: 'stage', sessionId: s.id });
    const v0 = await stage();
    const f = await addFile(s.id, 'foo-1.0.tar.gz');
    const v1 = await stage();
    expect(v1).toBeGreaterThan(v0);
    await store.updateFile(f.id, ['pending'], { notices: ['slow'], expiresAt: at(99) });
    expect(await stage()).toBe(v1);
    await store.updateFile(f.id, ['pending'], { status: 'completed', blobKey: 'k', coreMetadata: new Uint8Array([1]) });
    const v2 = await stage();
    expect(v2).toBeGreaterThan(v1);
    const replaced = await store.createFile(newFile(s.id, 'foo-1.0.tar.gz'), { maxFiles: 10 });
    expect(replaced.kind).toBe('created');
    const v3 = await stage();
    expect(v3).toBeGreaterThan(v2);
    await store.cancelSession(s.id, ['open'], at(5));
    expect(await stage()).toBeGreaterThan(v3);
    expect(await version({ kind: 'stage', sessionId: 'nope' })).toBe(0);
  });

  it("listStagedFiles: a session's completed files with the metadata digest and without the bytes", async () => {
    const s = await created();
    const done = await addCompleted(s.id, 'foo-1.0.tar.gz');
    await addFile(s.id, 'foo-1.0-py3-none-any.whl'); // pending: not staged
    const staged = await store.listStagedFiles(s.id);
    const { coreMetadata: _bytes, ...expected } = done;
    expect(staged).toEqual([expected]);
    expect(staged[0]).not.toHaveProperty('coreMetadata');
    expect(staged[0]?.coreMetadataSha256).toBe(createHash('sha256').update('Meta').digest('hex'));
  });

  it('listFiles (the session status, cancel and publish) selects no core_metadata column: the bytes stay on disk', async () => {
    const s = await created();
    const done = await addCompleted(s.id, 'foo-1.0.tar.gz');
    await addFile(s.id, 'foo-1.0-py3-none-any.whl');
    const connection = internalConnection(store);
    const real = connection.prepared.bind(connection);
    const statements: Database.Statement[] = [];
    vi.spyOn(connection, 'prepared').mockImplementation((sql: string) => {
      const stmt = real(sql) as Database.Statement;
      statements.push(stmt);
      return stmt;
    });
    const listed = [...(await store.listFiles(s.id)), ...(await store.listFiles(s.id, { includeCanceled: true }))];
    vi.restoreAllMocks();
    expect(statements.length).toBeGreaterThan(0);
    for (const stmt of statements) expect(stmt.columns().map((c) => c.name)).not.toContain('core_metadata');
    for (const f of listed) expect(f).not.toHaveProperty('coreMetadata');
    const { coreMetadata: _bytes, ...summary } = done;
    expect(listed.find((f) => f.id === done.id)).toEqual(summary);
  });

  it('listings never read the metadata bytes: they work with every page of them destroyed, getFile does not', async () => {
    const s = await created();
    const f = await addFile(s.id, 'foo-1.0.tar.gz');
    const metadata = new Uint8Array(256 * 1024).fill(0x4d); // far more than a page: stored in overflow pages
    await store.updateFile(f.id, ['pending'], { status: 'completed', blobKey: 'k', coreMetadata: metadata, requiresPython: '>=3.9' });
    await store.publish(s.id, ['open'], at(2), { defer: false }); // a copy in published_files too
    await store.close(); // the last connection: the WAL is checkpointed into the file

    // An overflow page is a 4-byte link to the next one, then content: point every page holding
    // only metadata at a page that does not exist, so that whatever walks the bytes fails.
    const bytes = fs.readFileSync(dbFile);
    const pageSize = bytes.readUInt16BE(16) === 1 ? 65536 : bytes.readUInt16BE(16);
    let destroyed = 0;
    for (let page = 0; page < bytes.length; page += pageSize) {
      if (bytes.subarray(page + 4, page + pageSize).every((b) => b === 0x4d)) {
        bytes.fill(0xff, page, page + 4);
        destroyed += 1;
      }
    }
    expect(destroyed).toBeGreaterThan((2 * metadata.length) / pageSize - 4);
    fs.writeFileSync(dbFile, bytes);

    store = new SqliteSessionStore(dbFile);
    const digest = createHash('sha256').update(metadata).digest('hex');
    expect(await store.listFiles(s.id)).toEqual([
      expect.objectContaining({ id: f.id, coreMetadataSha256: digest, requiresPython: '>=3.9' }),
    ]);
    expect(await store.listStagedFiles(s.id)).toEqual([expect.objectContaining({ id: f.id, coreMetadataSha256: digest })]);
    expect(await store.listPublishedFiles('foo')).toEqual([
      expect.objectContaining({ filename: 'foo-1.0.tar.gz', coreMetadataSha256: digest }),
    ]);
    expect(await store.getPublishedFile('foo', 'foo-1.0.tar.gz')).toMatchObject({ coreMetadataSha256: digest, requiresPython: '>=3.9' });
    // The pages destroyed were the metadata's: the reads that carry the bytes fail.
    await expect(store.getFile(f.id)).rejects.toThrow(/malformed/);
    await expect(store.getPublishedCoreMetadata('foo', 'foo-1.0.tar.gz')).rejects.toThrow(/malformed/);
  });

  it('keeps core_metadata the last column of files and published_files (the listings stop before it)', () => {
    const db = raw();
    for (const table of ['files', 'published_files']) {
      const columns = db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY cid`).pluck().all(table) as string[];
      expect(columns.at(-1), `a column added to ${table} after core_metadata: move core_metadata last again (see MIGRATIONS[6])`).toBe(
        'core_metadata',
      );
    }
    db.close();
  });

  it('migrates a file from before: the metadata moves to the end of the row, bytes and digests kept', async () => {
    await store.close();
    fs.rmSync(dbFile);
    const db = raw();
    db.function('pep694_sha256', (_: unknown) => null); // the earlier steps' functions, unused on empty tables
    db.function('pep694_file_identity', (_: unknown) => null);
    db.function('pep694_sha256_bytes', (_: unknown) => null);
    for (const step of MIGRATIONS.slice(0, 6)) db.exec(step);
    db.pragma('user_version = 6');
    const meta = Buffer.from('Metadata-Version: 2.1\nName: foo\n');
    const digest = createHash('sha256').update(meta).digest('hex');
    db.exec(`INSERT INTO sessions (id, project, display_name, version, release_key, status, created_by, created_at, expires_at, reserves_name, notices)
             VALUES ('s', 'foo', 'foo', '1.0', '1', 'open', 'alice', 0, ${at(60).getTime()}, 1, '[]');
             INSERT INTO projects (name, display_name, registered) VALUES ('foo', 'foo', 1);`);
    db.prepare(
      `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices, blob_key,
                  core_metadata, requires_python, identity, created_by, core_metadata_sha256)
                VALUES ('f', 's', 'foo-1.0.tar.gz', 5, '{}', 'm', 'completed', 0, ${at(60).getTime()}, '[]', 'k', ?, '>=3.9', ?, 'alice', ?)`,
    ).run(meta, distributionIdentity('foo-1.0.tar.gz'), digest);
    db.prepare(
      `INSERT INTO published_files (project, filename, display_name, version, size, hashes, blob_key, published_at, session_id, file_id,
                  core_metadata, requires_python, identity, core_metadata_sha256)
                VALUES ('foo', 'foo-0.9.tar.gz', 'foo', '0.9', 5, '{}', 'k0', 0, 'old', 'f0', ?, NULL, ?, ?)`,
    ).run(meta, distributionIdentity('foo-0.9.tar.gz'), digest);
    db.close();

    store = new SqliteSessionStore(dbFile);
    expect(await store.getFile('f')).toMatchObject({
      coreMetadata: new Uint8Array(meta),
      coreMetadataSha256: digest,
      requiresPython: '>=3.9',
    });
    expect(await store.getPublishedCoreMetadata('foo', 'foo-0.9.tar.gz')).toEqual(new Uint8Array(meta));
    expect(await store.getPublishedFile('foo', 'foo-0.9.tar.gz')).toMatchObject({ coreMetadataSha256: digest });
    expect(await store.listFiles('s')).toEqual([expect.objectContaining({ id: 'f', coreMetadataSha256: digest })]);
    const check = raw();
    expect(check.prepare(`SELECT name FROM pragma_table_info('files') ORDER BY cid DESC LIMIT 1`).pluck().get()).toBe('core_metadata');
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    check.close();
  });

  it('another connection (another process on the same database) sees every change at once', async () => {
    const other = new SqliteSessionStore(dbFile);
    try {
      const s = await created();
      await addCompleted(s.id, 'foo-1.0.tar.gz');
      const seen = await version({ kind: 'project', project: 'foo' }, other);
      await store.publish(s.id, ['open'], at(2), { defer: false });
      expect(await version({ kind: 'project', project: 'foo' }, other)).toBeGreaterThan(seen);
      expect((await other.listPublishedFiles('foo')).map((p) => p.filename)).toEqual(['foo-1.0.tar.gz']);
    } finally {
      await other.close();
    }
  });
});

describe('forgetting ended sessions', () => {
  it(`forgets them ${FORGET_BATCH} to a transaction, with their files and claims, and keeps live sessions`, async () => {
    const ended = 2 * FORGET_BATCH + 7;
    const forgotten: string[] = [];
    for (let i = 0; i < ended; i++) {
      const s = await created({ project: `p${i}`, version: '1.0', releaseKey: '1' });
      await addCompleted(s.id, `p${i}-1.0.tar.gz`);
      const r =
        i % 2 === 0 ? await store.publish(s.id, ['open'], at(1), { defer: false }) : await store.cancelSession(s.id, ['open'], at(1));
      expect(r).toBeTruthy();
      forgotten.push(s.id);
    }
    const live = await created({ project: 'live', version: '1.0', releaseKey: '1' });
    const liveFile = await addCompleted(live.id, 'live-1.0.tar.gz');
    const transactions = vi.spyOn(internalConnection(store) as unknown as { inWriteTransaction: () => unknown }, 'inWriteTransaction');

    expect(await store.forgetEndedSessions(at(2))).toBe(ended);
    // One transaction per batch, and one that finds nothing left only when the last batch was full.
    expect(transactions).toHaveBeenCalledTimes(3);
    for (const id of forgotten) expect(await store.getSession(id)).toBeUndefined();
    const db = internalDb(store);
    expect(db.prepare('SELECT COUNT(*) FROM files').pluck().get()).toBe(1);
    expect(db.prepare('SELECT COUNT(*) FROM filename_claims').pluck().get()).toBe(0);
    expect(db.prepare('SELECT COUNT(*) FROM published_files').pluck().get()).toBe(FORGET_BATCH + 4); // published files stay
    expect(await store.getFile(liveFile.id)).toMatchObject({ status: 'completed' });
    expect(await store.forgetEndedSessions(at(2))).toBe(0);
  });
});
