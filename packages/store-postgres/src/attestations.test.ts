/**
 * PEP 740 attestations of published files outlive the file upload session rows they came from: the
 * reaper forgets ended sessions and their files after `retention`, and the published index must go
 * on serving each file's provenance (index-hosted-attestations "Provenance objects"). They are
 * copied at publish (a session's or the legacy API's publishFile) into published_attestations; the
 * migration that adds the table copies those of files published before. The PostgreSQL
 * counterpart of the SQLite store's sqlite-store-attestations.test.ts.
 */
import pg from 'pg';
import { distributionIdentity, type FileUploadRecord, type NewDirectPublish } from '@pep694/core';
import { newDirectPublish } from '@pep694/store-conformance';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS } from './migrations.js';
import { UNDO_FILES_PUBLISHED } from './store.test-support.js';
import { PostgresSessionStore } from './store.js';
import { openTestStore, type TestStore } from './testing/index.js';

const bundles = [{ publisher: { kind: 'GitHub', claims: {} }, attestations: [{ version: 1 }] }];
const T0 = Date.UTC(2025, 0, 1);
/** `minutes` after T0. */
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

let t: TestStore;
let store: PostgresSessionStore;
beforeEach(async () => {
  t = await openTestStore();
  store = t.store;
});
afterEach(async () => {
  await t.dispose();
});

let seq = 0;

async function addCompleted(sessionId: string, filename: string): Promise<FileUploadRecord> {
  const created = await store.createFile(
    {
      id: `f${++seq}`,
      sessionId,
      filename,
      size: 10,
      hashes: { sha256: 'ab'.repeat(32) },
      mechanism: 'http-post-bytes',
      createdAt: at(seq / 1000),
      expiresAt: at(60),
      identity: distributionIdentity(filename),
    },
    { maxFiles: 10 },
  );
  if (created.kind !== 'created') throw new Error(`expected created, got ${created.kind}`);
  return (await store.updateFile(created.file.id, ['pending'], { status: 'completed', blobKey: `blob/${created.file.id}` }))!;
}

/** A session of foo 1.0 published with two files, one of them attested. */
async function publishedWithAttestations() {
  const r = await store.createSession({
    id: `s${++seq}`,
    project: 'foo',
    displayName: 'Foo',
    version: '1.0',
    releaseKey: '1',
    stageToken: null,
    createdBy: 'alice',
    createdAt: at(0),
    expiresAt: at(60),
  });
  if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
  const attested = await addCompleted(r.session.id, 'foo-1.0.tar.gz');
  await store.updateFile(attested.id, ['completed'], { attestations: bundles });
  const plain = await addCompleted(r.session.id, 'foo-1.0-py3-none-any.whl');
  expect((await store.publish(r.session.id, ['open'], at(2), { defer: false })).kind).toBe('published');
  return { attested, plain };
}

const direct = (filename: string, attestations: NewDirectPublish['attestations']): NewDirectPublish =>
  newDirectPublish({
    sessionId: `legacy-s${++seq}`,
    fileId: `legacy-f${seq}`,
    project: 'bar',
    filename,
    version: '2.0',
    releaseKey: '2',
    hashes: { sha256: 'cd'.repeat(32) },
    blobKey: `files/${filename}`,
    attestations,
    at: at(3),
  });

describe('attestations of published files (PostgreSQL)', () => {
  it('are read by getAttestations, and still after the reaper forgot their session', async () => {
    const { attested, plain } = await publishedWithAttestations();
    expect(await store.getAttestations([attested.id, plain.id, 'unknown'])).toEqual(new Map([[attested.id, bundles]]));
    expect(await store.forgetEndedSessions(at(10_000))).toBe(1);
    expect(await store.getFile(attested.id)).toBeUndefined();
    expect(await store.getAttestations([attested.id, plain.id])).toEqual(new Map([[attested.id, bundles]]));
  });

  it("of a file published by publishFile (the legacy upload API) outlive its session's rows too", async () => {
    const r = await store.publishFile(direct('bar-2.0.tar.gz', bundles));
    expect(r.kind).toBe('published');
    const fileId = r.kind === 'published' ? r.file.fileId : '';
    expect(await store.forgetEndedSessions(at(10_000))).toBe(1);
    expect(await store.getFile(fileId)).toBeUndefined();
    expect(await store.getAttestations([fileId])).toEqual(new Map([[fileId, bundles]]));
  });

  it('of staged files are read from their file rows', async () => {
    const r = await store.createSession({
      id: `s${++seq}`,
      project: 'baz',
      displayName: 'baz',
      version: '1.0',
      releaseKey: '1',
      stageToken: null,
      createdBy: 'alice',
      createdAt: at(0),
      expiresAt: at(60),
    });
    if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
    const staged = await addCompleted(r.session.id, 'baz-1.0.tar.gz');
    await store.updateFile(staged.id, ['completed'], { attestations: bundles });
    expect(await store.getAttestations([staged.id])).toEqual(new Map([[staged.id, bundles]]));
  });

  it('of files published before the table existed are copied by its migration', async () => {
    const { attested } = await publishedWithAttestations();
    // The database as the version before the table left it.
    const pool = new pg.Pool({ connectionString: t.database.url, max: 1 });
    try {
      // The table came in the migration before the last.
      await pool.query(UNDO_FILES_PUBLISHED);
      await pool.query('DROP TABLE published_attestations');
      await pool.query('DELETE FROM pep694_schema_migrations WHERE version = $1', [MIGRATIONS.length - 1]);
    } finally {
      await pool.end();
    }
    const reopened = await t.connect(); // migrate: false
    await expect(reopened.getAttestations([attested.id])).rejects.toThrow(/published_attestations/);
    const migrated = await PostgresSessionStore.open({ connectionString: t.database.url });
    try {
      // Read after the file rows are gone, so that only the copy the migration made can answer.
      expect(await migrated.forgetEndedSessions(at(10_000))).toBe(1);
      expect(await migrated.getAttestations([attested.id])).toEqual(new Map([[attested.id, bundles]]));
    } finally {
      await migrated.close();
    }
  });

  it('answer for many ids at once, and for none; an id holding NUL finds nothing', async () => {
    const { attested } = await publishedWithAttestations();
    const ids = [...Array.from({ length: 1_500 }, (_, i) => `nobody-${i}`), 'a\u0000b', attested.id];
    expect([...(await store.getAttestations(ids)).keys()]).toEqual([attested.id]);
    expect((await store.getAttestations([])).size).toBe(0);
  });
});
