/**
 * Fixtures of the SQLite store's tests (sqlite-store*.test.ts): a fixed clock, a store on a fresh
 * database file per test, and builders for sessions and files with ids unique across a test file.
 * Not part of the package (tsconfig excludes it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  distributionIdentity,
  type FileUploadRecord,
  type NewFileUpload,
  type NewPublishingSession,
  type PublishingSessionRecord,
} from '@pep694/core';
import { expect } from 'vitest';
import { MIGRATIONS } from './sqlite/migrations.js';
import { SqliteSessionStore, type SqliteSessionStoreOptions } from './sqlite/store.js';

export const T0 = Date.UTC(2025, 0, 1);
/** `minutes` after T0. */
export const at = (minutes: number) => new Date(T0 + minutes * 60_000);

/** A store on `store.sqlite` in a new temporary directory (for a beforeEach; closeTempStore undoes it). */
export function openTempStore(prefix: string, options?: SqliteSessionStoreOptions) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const dbFile = path.join(dir, 'store.sqlite');
  return { dir, dbFile, store: new SqliteSessionStore(dbFile, options) };
}

/** Closes the store (the test's last one: tests reopen it) and removes its directory. */
export async function closeTempStore(store: SqliteSessionStore, dir: string): Promise<void> {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Where MIGRATIONS adds `files.published`: the schema version of a file from before it. */
export const FILES_PUBLISHED_MIGRATION = MIGRATIONS.findIndex((step) => step.includes('ADD COLUMN published'));

/**
 * Takes a file at the current schema back to the one before `files.published` (MIGRATIONS[
 * FILES_PUBLISHED_MIGRATION]), the later migrations undone too: for tests that go back to it or
 * further, then let the store migrate forward again.
 */
export const UNDO_FILES_PUBLISHED = `
  DROP INDEX files_expiry; DROP INDEX files_processing; DROP INDEX sessions_processing;
  DROP INDEX projects_reserved_by; DROP INDEX filename_claims_file;
  DROP INDEX files_staged_by;
  ALTER TABLE files DROP COLUMN published;
  CREATE INDEX files_staged_by ON files (created_by) WHERE status IN ('pending', 'processing', 'completed');`;

let seq = 0;

/** A session of foo 1.0 by alice, open from minute 0 to 60, with a new id. */
export const newSession = (over: Partial<NewPublishingSession> = {}): NewPublishingSession => ({
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

/** A 10-byte file upload of `filename` with a new id, created after every earlier one. */
export const newFile = (sessionId: string, filename: string, over: Partial<NewFileUpload> = {}): NewFileUpload => ({
  id: `f${++seq}`,
  sessionId,
  filename,
  size: 10,
  hashes: { sha256: 'ab'.repeat(32) },
  mechanism: 'http-post-bytes',
  createdAt: at(seq),
  expiresAt: at(60),
  identity: distributionIdentity(filename),
  ...over,
});

/**
 * Steps that create what a test starts from, on the test's current store (`current()`, as tests
 * reopen it) unless given another connection.
 */
export function storeSteps(current: () => SqliteSessionStore) {
  async function created(over: Partial<NewPublishingSession> = {}, s = current()): Promise<PublishingSessionRecord> {
    const r = await s.createSession(newSession(over));
    if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
    return r.session;
  }

  async function addFile(sessionId: string, filename: string, s = current()): Promise<FileUploadRecord> {
    const r = await s.createFile(newFile(sessionId, filename), { maxFiles: 10 });
    if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
    return r.file;
  }

  /** A completed file, with core metadata (the bytes of `Meta`) and Requires-Python. */
  async function addCompleted(sessionId: string, filename: string, s = current()): Promise<FileUploadRecord> {
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
  async function registered(project = 'foo', s = current()): Promise<void> {
    const r = await created({ project, version: '0.0', releaseKey: '0' }, s);
    expect((await s.publish(r.id, ['open'], at(1), { defer: false })).kind).toBe('published');
  }

  return { created, addFile, addCompleted, registered };
}
