import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FileUploadRecord, NewFileUpload, NewPublishingSession, PublishingSessionRecord } from '@pep694/core';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteSessionStore } from './sqlite-store.js';

const T0 = Date.UTC(2025, 0, 1);
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

let dir: string;
let dbFile: string;
let store: SqliteSessionStore;
let seq = 0;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pep694-sqlite-'));
  dbFile = path.join(dir, 'store.sqlite');
  store = new SqliteSessionStore(dbFile);
});

afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const newSession = (over: Partial<NewPublishingSession> = {}): NewPublishingSession => ({
  id: `s${++seq}`,
  project: 'foo',
  displayName: 'Foo',
  version: '1.0',
  releaseKey: '1',
  stageToken: null,
  createdBy: 'alice',
  createdAt: at(0),
  expiresAt: at(60),
  ...over,
});

const newFile = (sessionId: string, filename: string, over: Partial<NewFileUpload> = {}): NewFileUpload => ({
  id: `f${++seq}`,
  sessionId,
  filename,
  size: 10,
  hashes: { sha256: 'ab'.repeat(32) },
  mechanism: 'http-post-bytes',
  createdAt: at(seq),
  expiresAt: at(60),
  ...over,
});

async function created(over: Partial<NewPublishingSession> = {}, s: SqliteSessionStore = store): Promise<PublishingSessionRecord> {
  const r = await s.createSession(newSession(over));
  if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
  return r.session;
}

async function addFile(sessionId: string, filename: string, s: SqliteSessionStore = store): Promise<FileUploadRecord> {
  const r = await s.createFile(newFile(sessionId, filename), { maxFiles: 10 });
  if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
  return r.file;
}

async function addCompleted(sessionId: string, filename: string, s: SqliteSessionStore = store): Promise<FileUploadRecord> {
  const f = await addFile(sessionId, filename, s);
  const done = await s.updateFile(f.id, ['pending'], {
    status: 'completed',
    blobKey: `blob/${f.id}`,
    coreMetadata: new Uint8Array([77, 101, 116, 97]),
    requiresPython: '>=3.9',
  });
  return done!;
}

/** A registered project (published through an empty session), so several versions can be live at once. */
async function registered(project = 'foo'): Promise<void> {
  const s = await created({ project, version: '0.0', releaseKey: '0' });
  expect((await store.publish(s.id, ['open'], at(1), { defer: false })).kind).toBe('published');
}

/** A second connection, to poke the schema directly. */
function raw(): Database.Database {
  const db = new Database(dbFile);
  db.pragma('busy_timeout = 5000');
  return db;
}

const internalDb = (s: SqliteSessionStore) => (s as unknown as { db: Database.Database }).db;

/** Takes a schema-3 file back to schema 2 (before core_metadata_sha256 and the index counters). */
const UNDO_SCHEMA_3 = `
  DROP TRIGGER index_projects_insert; DROP TRIGGER index_projects_update; DROP TRIGGER index_projects_delete;
  DROP TRIGGER index_published_insert; DROP TRIGGER index_published_update; DROP TRIGGER index_published_delete;
  DROP TRIGGER index_files_insert; DROP TRIGGER index_files_update; DROP TRIGGER index_files_delete;
  DROP TABLE index_version;
  ALTER TABLE projects DROP COLUMN files_version; ALTER TABLE sessions DROP COLUMN files_version;
  ALTER TABLE files DROP COLUMN core_metadata_sha256; ALTER TABLE published_files DROP COLUMN core_metadata_sha256;`;

describe('setup', () => {
  it('uses WAL, synchronous FULL, foreign keys, a busy timeout and a schema version', () => {
    const db = internalDb(store);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    const other = raw();
    expect(other.pragma('user_version', { simple: true })).toBe(3);
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
    const s = await created({ stageToken: 'old-token' });
    await store.close();
    const db = raw();
    // Back to schema 1, as a file written before stage_key existed.
    db.exec(`${UNDO_SCHEMA_3} DROP INDEX sessions_stage_key; ALTER TABLE sessions DROP COLUMN stage_key; PRAGMA user_version = 1;`);
    db.close();
    store = new SqliteSessionStore(dbFile);
    expect(await store.getSessionByStageToken('old-token')).toMatchObject({ id: s.id });
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
      .prepare(
        `INSERT INTO sessions VALUES (?, 'foo', 'Foo', '1.0', ?, ?, ?, 'alice', 0, 0, NULL, 0, '[]', NULL, 0)`,
      )
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
    expect(() => insertSession(db, 'b', 'canceled', '1', 'tok')).toThrow(
      expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }),
    );
    insertSession(db, 'c', 'canceled', '1', null);
    insertSession(db, 'd', 'canceled', '1', null);
    db.close();
  });

  it('one non-canceled file per session and filename', () => {
    const db = raw();
    insertSession(db, 's', 'open');
    const insertFile = (id: string, status: string) =>
      db
        .prepare(`INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices)
                  VALUES (?, 's', 'foo-1.0.tar.gz', 1, '{}', 'm', ?, 0, 0, '[]')`)
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
    const publish = () =>
      db
        .prepare(`INSERT INTO published_files VALUES ('foo', 'foo-1.0.tar.gz', 'Foo', '1.0', 1, '{}', 'b', 0, 's', 'f', NULL, NULL, NULL)`)
        .run();
    publish();
    expect(publish).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }));

    insertSession(db, 's', 'processing', '9');
    db.prepare(`INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices)
                VALUES ('f', 's', 'foo-2.0.tar.gz', 1, '{}', 'm', 'completed', 0, 0, '[]')`).run();
    const claim = () => db.prepare(`INSERT INTO filename_claims VALUES ('foo', 'foo-2.0.tar.gz', 's', 'f')`).run();
    claim();
    expect(claim).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }));
    db.close();
  });

  it('one project row per normalized name', async () => {
    await created();
    const db = raw();
    expect(() => db.prepare(`INSERT INTO projects VALUES ('foo', 'FOO', 1, NULL, 0)`).run()).toThrow(
      expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }),
    );
    db.close();
  });
});

describe('createSession', () => {
  it('creates the first session, reserving the name without making the project visible', async () => {
    const input = newSession({ stageToken: 'tok-1' });
    const r = await store.createSession(input);
    expect(r).toEqual({
      kind: 'created',
      session: {
        id: input.id,
        project: 'foo',
        displayName: 'Foo',
        version: '1.0',
        releaseKey: '1',
        status: 'open',
        stageToken: 'tok-1',
        createdBy: 'alice',
        createdAt: at(0),
        expiresAt: at(60),
        endedAt: null,
        reservesName: true,
        notices: [],
      },
    });
    expect(await store.getSession(input.id)).toEqual(r.session);
    expect(await store.getSessionByStageToken('tok-1')).toEqual(r.session);
    expect(await store.getSessionByStageToken('nope')).toBeUndefined();
    expect(await store.isPublishedProject('foo')).toBe(false);
    expect(await store.listPublishedProjects()).toEqual([]);
  });

  it("answers 'exists' for the same release key and 'name-reserved' for another version", async () => {
    const first = await created();
    expect(await store.createSession(newSession({ version: '1.0.0', releaseKey: '1' }))).toEqual({ kind: 'exists', session: first });
    expect(await store.createSession(newSession({ version: '2.0', releaseKey: '2' }))).toEqual({
      kind: 'name-reserved',
      session: first,
    });
    // A reservation held through error is still held.
    await store.publish(first.id, ['open'], at(1), { defer: true });
    await store.settlePublish(first.id, at(2), { ok: false, notices: ['bad'] });
    expect((await store.createSession(newSession({ version: '2.0', releaseKey: '2' }))).kind).toBe('name-reserved');
  });

  it('creates sessions without reservation for a registered project, several versions at once', async () => {
    await registered();
    const a = await created({ version: '1.0', releaseKey: '1' });
    const b = await created({ version: '2.0', releaseKey: '2' });
    expect([a.reservesName, b.reservesName]).toEqual([false, false]);
  });

  it('allows a new session for a name+version once the previous one is terminal', async () => {
    const first = await created();
    await store.cancelSession(first.id, ['open'], at(1));
    const second = await created();
    expect(second.id).not.toBe(first.id);
  });

  it('takes over a reservation whose holder is no longer live', async () => {
    const first = await created();
    const db = raw();
    db.prepare(`UPDATE sessions SET status = 'canceled' WHERE id = ?`).run(first.id); // bypassing cancelSession
    db.close();
    const second = await created({ version: '2.0', releaseKey: '2', displayName: 'FOO' });
    expect(second.reservesName).toBe(true);
    expect((await store.createSession(newSession({ version: '3.0', releaseKey: '3' }))).kind).toBe('name-reserved');
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

  it('counts live sessions per creator', async () => {
    await registered();
    const a = await created({ releaseKey: '1' });
    await created({ releaseKey: '2' });
    await created({ releaseKey: '3', createdBy: 'bob' });
    expect(await store.countLiveSessions('alice')).toBe(2); // the published one does not count
    await store.cancelSession(a.id, ['open'], at(1));
    expect(await store.countLiveSessions('alice')).toBe(1);
    expect(await store.countLiveSessions('carol')).toBe(0);
  });
});

describe('updateSession', () => {
  it('compare-and-sets on the status and patches only what is given', async () => {
    const s = await created();
    const extended = await store.updateSession(s.id, ['open', 'error'], { expiresAt: at(120) });
    expect(extended).toEqual({ ...s, expiresAt: at(120) });
    const noticed = await store.updateSession(s.id, ['open'], { notices: ['hello'] });
    expect(noticed).toEqual({ ...s, expiresAt: at(120), notices: ['hello'] });
    expect(await store.updateSession(s.id, ['processing'], { expiresAt: at(1) })).toBeUndefined();
    expect(await store.updateSession('missing', ['open'], { expiresAt: at(1) })).toBeUndefined();
    expect(await store.updateSession(s.id, [], { expiresAt: at(1) })).toBeUndefined();
    expect((await store.getSession(s.id))?.expiresAt).toEqual(at(120));
  });
});

describe('cancelSession', () => {
  it('cancels the session and its files, returns them as canceled, and releases the reservation', async () => {
    const s = await created();
    const done = await addCompleted(s.id, 'foo-1.0.tar.gz');
    const pending = await addFile(s.id, 'foo-1.0-py3-none-any.whl');
    const r = await store.cancelSession(s.id, ['open', 'error'], at(5));
    expect(r?.session).toEqual({ ...s, status: 'canceled', endedAt: at(5) });
    expect(r?.files).toEqual([
      { ...done, status: 'canceled' },
      { ...pending, status: 'canceled' },
    ]);
    expect(await store.listFiles(s.id)).toEqual([]);
    // The project row is gone: another version can now reserve the name.
    const other = await created({ version: '2.0', releaseKey: '2', displayName: 'FOO' });
    expect(other.reservesName).toBe(true);
  });

  it('does not match another status, and leaves a registered project alone', async () => {
    await registered();
    const s = await created();
    await addCompleted(s.id, 'foo-1.0.tar.gz');
    await store.publish(s.id, ['open'], at(1), { defer: true });
    expect(await store.cancelSession(s.id, ['open', 'error'], at(2))).toBeUndefined();
    await store.settlePublish(s.id, at(3), { ok: false, notices: ['x'] });
    expect((await store.cancelSession(s.id, ['open', 'error'], at(4)))?.files).toHaveLength(1);
    expect(await store.isPublishedProject('foo')).toBe(true);
    expect(await store.listPublishedProjects()).toEqual([{ project: 'foo', displayName: 'Foo' }]);
  });

  it("releases a canceled session's filename claims", async () => {
    await registered();
    const s = await created();
    await addCompleted(s.id, 'foo-1.0.tar.gz');
    await store.publish(s.id, ['open'], at(1), { defer: true });
    expect(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz')).toBe(true);
    // Not a transition the service allows from processing, but the store must not leak claims.
    await store.cancelSession(s.id, ['processing'], at(2));
    expect(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz')).toBe(false);
  });
});

describe('createFile', () => {
  it('creates a pending file upload session', async () => {
    const s = await created();
    const input = newFile(s.id, 'foo-1.0.tar.gz');
    expect(await store.createFile(input, { maxFiles: 10 })).toEqual({
      kind: 'created',
      replaced: null,
      file: {
        id: input.id,
        sessionId: s.id,
        filename: 'foo-1.0.tar.gz',
        size: 10,
        hashes: input.hashes,
        mechanism: 'http-post-bytes',
        status: 'pending',
        createdAt: input.createdAt,
        expiresAt: at(60),
        notices: [],
        blobKey: null,
        attestations: null,
        instructions: null,
        coreMetadata: null,
        requiresPython: null,
        coreMetadataSha256: null,
      },
    });
  });

  it("answers 'exists' for a pending, processing or error file of the same name", async () => {
    const s = await created();
    const f = await addFile(s.id, 'foo-1.0.tar.gz');
    for (const status of ['pending', 'processing', 'error'] as const) {
      const now = await store.updateFile(f.id, ['pending', 'processing', 'error'], { status });
      expect(await store.createFile(newFile(s.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).toEqual({ kind: 'exists', file: now });
    }
  });

  it('replaces a completed file, canceling the old one', async () => {
    const s = await created();
    const old = await addCompleted(s.id, 'foo-1.0.tar.gz');
    const r = await store.createFile(newFile(s.id, 'foo-1.0.tar.gz'), { maxFiles: 1 }); // at the limit: replacing is fine
    expect(r).toMatchObject({ kind: 'created', replaced: { ...old, status: 'canceled' }, file: { status: 'pending' } });
    expect((await store.listFiles(s.id)).map((f) => f.status)).toEqual(['pending']);
    expect((await store.listFiles(s.id, { includeCanceled: true })).map((f) => f.status)).toEqual(['canceled', 'pending']);
  });

  it('a canceled file of the same name is no obstacle', async () => {
    const s = await created();
    const f = await addFile(s.id, 'foo-1.0.tar.gz');
    await store.updateFile(f.id, ['pending'], { status: 'canceled' });
    expect(await store.createFile(newFile(s.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).toMatchObject({ kind: 'created', replaced: null });
  });

  it("answers 'too-many-files' at the limit", async () => {
    const s = await created();
    await addFile(s.id, 'a-1.0.tar.gz');
    const b = await addFile(s.id, 'b-1.0.tar.gz');
    expect(await store.createFile(newFile(s.id, 'c-1.0.tar.gz'), { maxFiles: 2 })).toEqual({ kind: 'too-many-files', limit: 2 });
    await store.updateFile(b.id, ['pending'], { status: 'canceled' });
    expect((await store.createFile(newFile(s.id, 'c-1.0.tar.gz'), { maxFiles: 2 })).kind).toBe('created');
  });

  it("answers 'session-state' unless the session is open or error", async () => {
    await registered();
    const s = await created();
    await store.publish(s.id, ['open'], at(1), { defer: true });
    expect(await store.createFile(newFile(s.id, 'x-1.0.tar.gz'), { maxFiles: 10 })).toEqual({ kind: 'session-state', status: 'processing' });
    await store.settlePublish(s.id, at(2), { ok: false, notices: [] });
    expect((await store.createFile(newFile(s.id, 'x-1.0.tar.gz'), { maxFiles: 10 })).kind).toBe('created');
    await store.cancelSession(s.id, ['error'], at(3));
    expect(await store.createFile(newFile(s.id, 'y-1.0.tar.gz'), { maxFiles: 10 })).toEqual({ kind: 'session-state', status: 'canceled' });
  });

  it("answers 'published' for a filename published or claimed in the project", async () => {
    await registered();
    const a = await created({ releaseKey: '1' });
    await addCompleted(a.id, 'foo-1.0.tar.gz');
    await store.publish(a.id, ['open'], at(1), { defer: false });
    const b = await created({ releaseKey: '1' });
    expect(await store.createFile(newFile(b.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).toEqual({ kind: 'published' });

    const c = await created({ version: '2.0', releaseKey: '2' });
    await addCompleted(c.id, 'foo-2.0.tar.gz');
    await store.publish(c.id, ['open'], at(2), { defer: true });
    expect(await store.createFile(newFile(b.id, 'foo-2.0.tar.gz'), { maxFiles: 10 })).toEqual({ kind: 'published' });
    // Another project's namespace is separate.
    await registered('bar');
    const d = await created({ project: 'bar', displayName: 'bar' });
    expect((await store.createFile(newFile(d.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).kind).toBe('created');
  });

  it('rejects an unknown session', async () => {
    await expect(store.createFile(newFile('missing', 'foo-1.0.tar.gz'), { maxFiles: 10 })).rejects.toThrow(/unknown/);
  });
});

describe('updateFile and listFiles', () => {
  it('compare-and-sets on the file status, writing only the given fields (null clears)', async () => {
    const s = await created();
    const f = await addFile(s.id, 'foo-1.0.tar.gz');
    const done = await store.updateFile(f.id, ['pending'], {
      status: 'completed',
      blobKey: 'k',
      attestations: [{ version: 1 }],
      coreMetadata: new Uint8Array([1, 2, 3]),
      requiresPython: '>=3.8',
      notices: ['n'],
      expiresAt: at(90),
    });
    expect(done).toEqual({
      ...f,
      status: 'completed',
      blobKey: 'k',
      attestations: [{ version: 1 }],
      coreMetadata: new Uint8Array([1, 2, 3]),
      requiresPython: '>=3.8',
      // Computed by the store when the metadata is written (PEP 658 data-dist-info-metadata).
      coreMetadataSha256: createHash('sha256').update(new Uint8Array([1, 2, 3])).digest('hex'),
      notices: ['n'],
      expiresAt: at(90),
    });
    expect(done?.coreMetadata?.constructor).toBe(Uint8Array);
    expect(await store.updateFile(f.id, ['pending'], { status: 'error' })).toBeUndefined();
    const cleared = await store.updateFile(f.id, ['completed'], { blobKey: null, coreMetadata: null, attestations: null });
    expect(cleared).toEqual({ ...done, blobKey: null, coreMetadata: null, coreMetadataSha256: null, attestations: null });
    expect(await store.updateFile(f.id, ['completed'], {})).toEqual(cleared);
    expect(await store.getFile(f.id)).toEqual(cleared);
    expect(await store.getFile('missing')).toBeUndefined();
  });

  it('checks the parent session status when asked', async () => {
    await registered();
    const s = await created();
    const f = await addCompleted(s.id, 'foo-1.0.tar.gz');
    await store.publish(s.id, ['open'], at(1), { defer: true });
    expect(await store.updateFile(f.id, ['completed'], { status: 'canceled' }, ['open', 'error'])).toBeUndefined();
    expect(await store.updateFile(f.id, ['completed'], { notices: ['x'] }, ['processing'])).toMatchObject({ notices: ['x'] });
  });

  it('lists files by creation time then id', async () => {
    const s = await created();
    const b = await store.createFile(newFile(s.id, 'b-1.0.tar.gz', { id: 'fb', createdAt: at(1) }), { maxFiles: 10 });
    const a = await store.createFile(newFile(s.id, 'a-1.0.tar.gz', { id: 'fa', createdAt: at(1) }), { maxFiles: 10 });
    const c = await store.createFile(newFile(s.id, 'c-1.0.tar.gz', { id: 'fc', createdAt: at(0) }), { maxFiles: 10 });
    expect((await store.listFiles(s.id)).map((f) => f.id)).toEqual(['fc', 'fa', 'fb']);
    expect([a.kind, b.kind, c.kind]).toEqual(['created', 'created', 'created']);
  });
});

describe('publish', () => {
  it("answers 'session-state' outside the expected states", async () => {
    const s = await created();
    expect(await store.publish(s.id, ['error'], at(1), { defer: false })).toEqual({ kind: 'session-state', status: 'open' });
  });

  it("answers 'unfinished' listing every file that is not completed", async () => {
    const s = await created();
    await addCompleted(s.id, 'a-1.0.tar.gz');
    await addFile(s.id, 'b-1.0.tar.gz');
    const c = await addFile(s.id, 'c-1.0.tar.gz');
    await store.updateFile(c.id, ['pending'], { status: 'error' });
    const gone = await addFile(s.id, 'd-1.0.tar.gz');
    await store.updateFile(gone.id, ['pending'], { status: 'canceled' });
    expect(await store.publish(s.id, ['open'], at(1), { defer: false })).toEqual({
      kind: 'unfinished',
      files: [
        { filename: 'b-1.0.tar.gz', status: 'pending' },
        { filename: 'c-1.0.tar.gz', status: 'error' },
      ],
    });
    expect((await store.getSession(s.id))?.status).toBe('open');
  });

  it('publishes immediately: files, registration and session in one step', async () => {
    const s = await created();
    const f = await addCompleted(s.id, 'foo-1.0.tar.gz');
    const r = await store.publish(s.id, ['open', 'error'], at(3), { defer: false });
    expect(r).toEqual({ kind: 'published', session: { ...s, status: 'published', endedAt: at(3) } });
    expect(await store.listPublishedFiles('foo')).toEqual([
      {
        project: 'foo',
        displayName: 'Foo',
        version: '1.0',
        filename: 'foo-1.0.tar.gz',
        size: 10,
        hashes: f.hashes,
        blobKey: f.blobKey,
        publishedAt: at(3),
        sessionId: s.id,
        fileId: f.id,
        coreMetadataSha256: createHash('sha256').update('Meta').digest('hex'),
        requiresPython: '>=3.9',
      },
    ]);
    // The bytes are read on their own, never with a listing.
    expect(await store.getPublishedCoreMetadata('foo', 'foo-1.0.tar.gz')).toEqual(new Uint8Array([77, 101, 116, 97]));
    expect(await store.getPublishedCoreMetadata('foo', 'nope')).toBeUndefined();
    expect(await store.isPublishedProject('foo')).toBe(true);
    expect(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz')).toBe(true);
    expect(await store.listPublishedProjects()).toEqual([{ project: 'foo', displayName: 'Foo' }]);
    expect(await store.getPublishedFile('foo', 'nope')).toBeUndefined();
  });

  it('registers the project with an empty session (PEP 694 FAQ)', async () => {
    const s = await created({ project: 'empty', displayName: 'Empty' });
    expect((await store.publish(s.id, ['open'], at(1), { defer: false })).kind).toBe('published');
    expect(await store.isPublishedProject('empty')).toBe(true);
    expect(await store.listPublishedProjects()).toEqual([{ project: 'empty', displayName: 'Empty' }]);
    expect(await store.listPublishedFiles('empty')).toEqual([]);
  });

  it("answers 'conflict' naming every filename published or claimed elsewhere", async () => {
    await registered();
    const a = await created({ releaseKey: '1' });
    const b = await created({ releaseKey: '2' });
    const c = await created({ releaseKey: '3' });
    for (const [s, names] of [
      [a, ['x-1.tar.gz']],
      [b, ['y-1.tar.gz']],
      [c, ['x-1.tar.gz', 'y-1.tar.gz', 'z-1.tar.gz']],
    ] as const) {
      for (const name of names) await addCompleted(s.id, name);
    }
    await store.publish(a.id, ['open'], at(1), { defer: false });
    await store.publish(b.id, ['open'], at(1), { defer: true });
    expect(await store.publish(c.id, ['open'], at(2), { defer: false })).toEqual({
      kind: 'conflict',
      filenames: ['x-1.tar.gz', 'y-1.tar.gz'],
    });
    expect((await store.getSession(c.id))?.status).toBe('open');
    expect(await store.isFilenameTaken('foo', 'z-1.tar.gz')).toBe(false);
  });

  it('defers: claims the filenames and moves to processing; settling ok publishes', async () => {
    const s = await created();
    const f = await addCompleted(s.id, 'foo-1.0.tar.gz');
    expect(await store.publish(s.id, ['open'], at(1), { defer: true })).toEqual({
      kind: 'processing',
      session: { ...s, status: 'processing' },
    });
    // Claimed, not published: nothing is visible yet.
    expect(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz')).toBe(true);
    expect(await store.isPublishedProject('foo')).toBe(false);
    expect(await store.listPublishedFiles('foo')).toEqual([]);
    expect(await store.listExpiredSessions(at(1000))).toEqual([]); // processing never expires

    const done = await store.settlePublish(s.id, at(4), { ok: true });
    expect(done).toEqual({ ...s, status: 'published', endedAt: at(4) });
    expect(await store.getPublishedFile('foo', 'foo-1.0.tar.gz')).toMatchObject({ fileId: f.id, publishedAt: at(4), blobKey: f.blobKey });
    expect(await store.isPublishedProject('foo')).toBe(true);
    expect(await store.settlePublish(s.id, at(5), { ok: true })).toBeUndefined();
  });

  it('settling a failure releases the claims and moves to error with notices', async () => {
    await registered();
    const s = await created({ releaseKey: '1' });
    const a = await addCompleted(s.id, 'foo-1.0.tar.gz');
    const b = await addCompleted(s.id, 'foo-1.0-py3-none-any.whl');
    await store.publish(s.id, ['open'], at(1), { defer: true });
    const other = await created({ version: '2.0', releaseKey: '2' });
    expect(await store.createFile(newFile(other.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).toEqual({ kind: 'published' });

    const failed = await store.settlePublish(s.id, at(2), {
      ok: false,
      notices: ['foo-1.0.tar.gz: metadata mismatch'],
      fileNotices: { 'foo-1.0.tar.gz': ['metadata mismatch'] },
    });
    expect(failed).toEqual({ ...s, status: 'error', notices: ['foo-1.0.tar.gz: metadata mismatch'] });
    expect(await store.getFile(a.id)).toEqual({ ...a, notices: ['metadata mismatch'] });
    expect(await store.getFile(b.id)).toEqual(b);
    expect(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz')).toBe(false);
    expect((await store.createFile(newFile(other.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).kind).toBe('created');
    expect(await store.listPublishedFiles('foo')).toEqual([]);

    // From error the session can publish again (immediately, here); the other session's
    // pending file with the same name does not block it: only published and claimed names do.
    expect(await store.publish(s.id, ['open', 'error'], at(3), { defer: false })).toMatchObject({ kind: 'published' });
    expect((await store.listPublishedFiles('foo')).map((p) => p.filename)).toEqual(['foo-1.0-py3-none-any.whl', 'foo-1.0.tar.gz']);
  });

  it('rejects an unknown session', async () => {
    await expect(store.publish('missing', ['open'], at(1), { defer: false })).rejects.toThrow(/unknown/);
  });
});

describe('housekeeping', () => {
  it('lists open and error sessions whose expiry has passed', async () => {
    await registered();
    const a = await created({ releaseKey: '1', expiresAt: at(10) });
    const b = await created({ releaseKey: '2', expiresAt: at(20) });
    await created({ releaseKey: '3', expiresAt: at(30) });
    await store.publish(b.id, ['open'], at(1), { defer: true });
    await store.settlePublish(b.id, at(2), { ok: false, notices: [] });
    expect((await store.listExpiredSessions(at(20))).map((s) => s.id)).toEqual([a.id, b.id]);
    expect(await store.listExpiredSessions(at(9))).toEqual([]);
  });

  it('forgets ended sessions and their file rows, keeping published files', async () => {
    const p = await created({ releaseKey: '1' });
    const pf = await addCompleted(p.id, 'foo-1.0.tar.gz');
    await store.publish(p.id, ['open'], at(10), { defer: false });
    const c = await created({ releaseKey: '2', version: '2.0' });
    const cf = await addCompleted(c.id, 'foo-2.0.tar.gz');
    await store.cancelSession(c.id, ['open'], at(20));
    const live = await created({ releaseKey: '3', version: '3.0' });
    await addCompleted(live.id, 'foo-3.0.tar.gz');

    expect(await store.forgetEndedSessions(at(10))).toBe(0); // strictly before
    expect(await store.forgetEndedSessions(at(21))).toBe(2);
    expect(await store.getSession(p.id)).toBeUndefined();
    expect(await store.getFile(pf.id)).toBeUndefined();
    expect(await store.getFile(cf.id)).toBeUndefined();
    expect(await store.getSession(live.id)).toBeDefined();
    expect(await store.listFiles(live.id)).toHaveLength(1);
    expect(await store.getPublishedFile('foo', 'foo-1.0.tar.gz')).toMatchObject({ fileId: pf.id, sessionId: p.id });
    expect(await store.isPublishedProject('foo')).toBe(true);

    // Blob references: the published copy still refers to its key; the forgotten canceled file does not.
    expect(await store.isBlobReferenced(pf.blobKey!)).toBe(true);
    expect(await store.isBlobReferenced(cf.blobKey!)).toBe(false);
    const lf = (await store.listFiles(live.id))[0]!;
    expect(await store.isBlobReferenced(lf.blobKey!)).toBe(true);
    expect(await store.isBlobReferenced('blob/none')).toBe(false);
  });
});

describe('two connections on one file', () => {
  let other: SqliteSessionStore;
  beforeEach(() => {
    other = new SqliteSessionStore(dbFile);
  });
  afterEach(async () => {
    await other.close();
  });

  it('one of two creations of the same name+version wins', async () => {
    const results = await Promise.all([store.createSession(newSession()), other.createSession(newSession())]);
    const kinds = results.map((r) => r.kind).sort();
    expect(kinds).toEqual(['created', 'exists']);
    expect(results[0]!.session.id).toBe(results[1]!.session.id);
  });

  it('one of two sessions publishing the same filename wins', async () => {
    await registered();
    const a = await created({ releaseKey: '1' });
    const b = await created({ releaseKey: '2' }, other);
    await addCompleted(a.id, 'foo-1.0.tar.gz');
    await addCompleted(b.id, 'foo-1.0.tar.gz', other);
    const results = await Promise.all([
      store.publish(a.id, ['open'], at(1), { defer: true }),
      other.publish(b.id, ['open'], at(1), { defer: false }),
    ]);
    expect(results.map((r) => r.kind).sort()).toEqual(['conflict', 'processing']);
    expect(await other.isFilenameTaken('foo', 'foo-1.0.tar.gz')).toBe(true);
  });
});

describe('a constraint that fires despite the checks', () => {
  /** Blinds one check, once, as if another process had committed right after it read. */
  function blindOnce(match: string, answer: unknown) {
    const internals = store as unknown as { q(sql: string): unknown };
    const real = internals.q.bind(store);
    let armed = true;
    vi.spyOn(internals, 'q').mockImplementation((sql: string) => {
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
    blindOnce('SELECT f.filename FROM files f', []);
    expect(await store.publish(b.id, ['open'], at(2), { defer: false })).toEqual({ kind: 'conflict', filenames: ['foo-1.0.tar.gz'] });
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
 * test never runs against a stale dist; better-sqlite3 is imported by absolute path from there.
 */
function writeChildScript(): string {
  const require = createRequire(import.meta.url);
  const source = fs.readFileSync(fileURLToPath(new URL('./sqlite-store.ts', import.meta.url)), 'utf8');
  const js = ts
    .transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
    .outputText.replace(/(['"])better-sqlite3\1/, JSON.stringify(pathToFileURL(require.resolve('better-sqlite3')).href));
  expect(js).not.toMatch(/from ['"]@pep694/); // the store must stay loadable without the workspace
  fs.writeFileSync(path.join(dir, 'sqlite-store.mjs'), js);
  const child = path.join(dir, 'child.mjs');
  fs.writeFileSync(
    child,
    `
import { writeSync } from 'node:fs';
import { SqliteSessionStore } from './sqlite-store.mjs';
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

  it('exactly one of several processes publishes the same filename', async () => {
    await registered();
    const ids: string[] = [];
    for (const key of ['1', '2', '3']) {
      const s = await created({ releaseKey: key, version: `${key}.0` });
      await addCompleted(s.id, 'foo-1.0.tar.gz');
      ids.push(s.id);
    }
    const script = writeChildScript();
    const startAt = Date.now() + 1500;
    const runs = await Promise.all(ids.map((id) => runChild(script, { kind: 'publish', startAt, id, at: at(5).getTime() })));
    for (const r of runs) expect(r.err).toBe('');
    expect(runs.map((r) => (JSON.parse(r.out) as { kind: string }).kind).sort()).toEqual(['conflict', 'conflict', 'published']);
    expect(await store.listPublishedFiles('foo')).toHaveLength(1);
  });

  it('a publish that resolved survives a SIGKILL of its process', async () => {
    const script = writeChildScript();
    const session = newSession({ project: 'durable', displayName: 'Durable' });
    const file = newFile('ignored', 'durable-1.0.tar.gz');
    const run = await runChild(script, { kind: 'publish-then-die', startAt: 0, session: asJson(session), file: asJson(file), at: at(7).getTime() });
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

describe('index pages (issue #21): the metadata digest stored with the file, change counters in the database', () => {
  const version = (scope: Parameters<SqliteSessionStore['indexVersion']>[0], s: SqliteSessionStore = store) => s.indexVersion(scope);

  it('migrates a schema-2 file: stored metadata gets its digest, the counters start', async () => {
    const s = await created();
    const f = await addCompleted(s.id, 'foo-1.0.tar.gz');
    await store.publish(s.id, ['open'], at(2), { defer: false });
    await store.close();
    const db = raw();
    db.exec(`${UNDO_SCHEMA_3} PRAGMA user_version = 2;`);
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
