/**
 * Fixtures of the store's own tests: a fixed clock, builders of sessions and file uploads, and SQL
 * that takes a test database back to an older schema. Not part of the package (tsconfig and
 * `files` leave it out).
 */
import { distributionIdentity, releaseKey, type NewFileUpload } from '@pep694/core';
import { expect } from 'vitest';
import { MIGRATIONS } from './migrations.js';
import type { PostgresSessionStore } from './store.js';

/** `m` minutes into 2030. */
export const at = (m: number) => new Date(Date.UTC(2030, 0, 1) + m * 60_000);

/** Creates session `id` of `project` 1.0 by alice, open from minute 0 to 60 (it must be created). */
export async function openSession(
  store: PostgresSessionStore,
  id: string,
  project = 'foo',
  opts?: Parameters<PostgresSessionStore['createSession']>[1],
): Promise<string> {
  const r = await store.createSession(
    {
      id,
      project,
      displayName: project,
      version: '1.0',
      releaseKey: releaseKey('1.0'),
      stageToken: null,
      createdBy: 'alice',
      createdAt: at(0),
      expiresAt: at(60),
    },
    opts,
  );
  expect(r.kind).toBe('created');
  return id;
}

let seq = 0;
/** A file upload of `filename` into `sessionId`, with an id, sha256 and creation time of its own. */
export function newUpload(sessionId: string, filename: string, over: Partial<NewFileUpload> = {}): NewFileUpload {
  const n = ++seq;
  return {
    id: `f-${n}`,
    sessionId,
    filename,
    size: 1000,
    hashes: { sha256: n.toString(16).padStart(64, '0') },
    mechanism: 'http-post-bytes',
    identity: distributionIdentity(filename),
    createdAt: at(n / 1000),
    expiresAt: at(60),
    ...over,
  };
}

/** Back to before `files.published` (the last of MIGRATIONS). */
export const UNDO_FILES_PUBLISHED = `
  DROP INDEX files_staged_by;
  ALTER TABLE files DROP COLUMN published;
  CREATE INDEX files_staged_by ON files (created_by) WHERE status IN ('pending', 'processing', 'completed');
  DELETE FROM pep694_schema_migrations WHERE version = ${MIGRATIONS.length};`;
