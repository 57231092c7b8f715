/**
 * Per-principal limits the SQLite store applies in its write transactions (issue #21): the quota
 * on staged, unpublished bytes (finding 6) and the limit on new project names per time window.
 */
import { type CreateFileResult, type NewFileUpload, type NewPublishingSession, type PublishingSessionRecord } from '@pep694/core';
import { newDirectPublish } from '@pep694/store-conformance';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteSessionStore } from './sqlite/store.js';
import { at, closeTempStore, newFile, newSession, openTempStore, storeSteps } from './sqlite-test-support.js';

const GiB = 1024 ** 3;

let dir: string;
let dbFile: string;
let store: SqliteSessionStore;
beforeEach(() => {
  ({ dir, dbFile, store } = openTempStore('pep694-limits-'));
});
afterEach(() => closeTempStore(store, dir));
const steps = storeSteps(() => store);

let projects = 0;
/** A session of a project of its own, so that the limits, not other rules, decide. */
const created = (over: Partial<NewPublishingSession> = {}) =>
  steps.created({ project: `p${++projects}`, displayName: `p${projects}`, ...over });

/** A wheel `<project>-1.0-<name>-none-any.whl` of `size` bytes in `session`, by `createdBy` (default: the session's creator). */
const newWheel = (session: PublishingSessionRecord, name: string, size: number, createdBy?: string): NewFileUpload =>
  newFile(session.id, `${session.project}-1.0-${name}-none-any.whl`, { size, ...(createdBy ? { createdBy } : {}) });

const QUOTA = { maxFiles: 1000, maxStagedBytes: 5 * GiB };

async function stage(session: PublishingSessionRecord, name: string, size: number, createdBy?: string): Promise<CreateFileResult> {
  return store.createFile(newWheel(session, name, size, createdBy), QUOTA);
}

async function staged(session: PublishingSessionRecord, name: string, size: number, createdBy?: string) {
  const r = await stage(session, name, size, createdBy);
  if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
  return r.file;
}

describe('quota on staged bytes per principal (createFile)', () => {
  it('counts declared sizes across all live sessions of the principal, this file included', async () => {
    const a = await created();
    const b = await created();
    await staged(a, 'py2', 2 * GiB);
    await staged(b, 'py3', 2 * GiB);
    expect(await stage(b, 'py4', GiB + 1)).toEqual({ kind: 'over-quota', quota: 5 * GiB, used: 4 * GiB });
    expect((await stage(b, 'py4', GiB)).kind).toBe('created'); // exactly at the quota
    expect(await stage(a, 'py5', 1)).toEqual({ kind: 'over-quota', quota: 5 * GiB, used: 5 * GiB });
    // One file larger than the whole quota.
    const c = await created();
    expect(await stage(c, 'py2', 6 * GiB)).toMatchObject({ kind: 'over-quota' });
  });

  it("counts against the file's creator, not the session's: another principal has its own quota", async () => {
    const a = await created();
    await staged(a, 'py2', 5 * GiB);
    expect((await stage(a, 'py3', 4 * GiB, 'bob')).kind).toBe('created');
    expect(await stage(a, 'py4', 2 * GiB, 'bob')).toEqual({ kind: 'over-quota', quota: 5 * GiB, used: 4 * GiB });
  });

  it('is released when a file is deleted, fails, or its session is canceled or expires', async () => {
    const a = await created();
    const f = await staged(a, 'py2', 3 * GiB);
    expect((await stage(a, 'py3', 3 * GiB)).kind).toBe('over-quota');
    await store.updateFile(f.id, ['pending'], { status: 'canceled' }); // DELETE, or file expiry
    expect((await stage(a, 'py3', 3 * GiB)).kind).toBe('created');

    const b = await created();
    const g = await staged(b, 'py2', 2 * GiB);
    expect((await stage(b, 'py4', GiB)).kind).toBe('over-quota');
    await store.updateFile(g.id, ['pending'], { status: 'error' }); // its bytes were purged
    expect((await stage(b, 'py4', GiB)).kind).toBe('created');

    const c = await created();
    expect(await stage(c, 'py2', 2 * GiB)).toEqual({ kind: 'over-quota', quota: 5 * GiB, used: 4 * GiB });
    await store.cancelSession(a.id, ['open'], at(2)); // cancel, or session expiry (the reaper cancels)
    expect((await stage(c, 'py2', 2 * GiB)).kind).toBe('created');
  });

  it('is released when the session is published, not while a deferred publish runs', async () => {
    const a = await created();
    const f = await staged(a, 'py2', 4 * GiB);
    await store.updateFile(f.id, ['pending'], { status: 'completed', blobKey: `files/${f.id}` });
    expect((await store.publish(a.id, ['open'], at(2), { defer: true })).kind).toBe('processing');
    const b = await created();
    expect((await stage(b, 'py2', 2 * GiB)).kind).toBe('over-quota');
    await store.settlePublish(a.id, at(3), { ok: true });
    expect((await stage(b, 'py2', 2 * GiB)).kind).toBe('created');
  });

  it("reads only what the principal has staged: the files it published leave the quota's index", async () => {
    // Published files keep their status (completed) until the retention forgets them: while
    // files_staged_by held them too, the sum read every file a principal published in a week.
    const rowsRead = (principal: string) => {
      const db = new Database(dbFile, { readonly: true });
      try {
        return db
          .prepare(
            `SELECT COUNT(*) FROM files INDEXED BY files_staged_by
             WHERE created_by = ? AND published = 0 AND status IN ('pending', 'processing', 'completed')`,
          )
          .pluck()
          .get(principal);
      } finally {
        db.close();
      }
    };
    const a = await created();
    for (let i = 0; i < 20; i++) {
      const f = await staged(a, `py${i}`, GiB / 8);
      await store.updateFile(f.id, ['pending'], { status: 'completed', blobKey: `files/${f.id}` });
    }
    expect(rowsRead('alice')).toBe(20);
    expect((await store.publish(a.id, ['open'], at(2), { defer: false })).kind).toBe('published');
    // A deferred publish, settled.
    const b = await created();
    const g = await staged(b, 'py2', GiB);
    await store.updateFile(g.id, ['pending'], { status: 'completed', blobKey: `files/${g.id}` });
    expect((await store.publish(b.id, ['open'], at(3), { defer: true })).kind).toBe('processing');
    expect(rowsRead('alice')).toBe(1); // its bytes still count while the publish runs
    await store.settlePublish(b.id, at(4), { ok: true });
    // A legacy upload (one file published on its own).
    const direct = newSession({ project: `p${++projects}` });
    const published = await store.publishFile(
      newDirectPublish({
        sessionId: direct.id,
        fileId: `${direct.id}-f`,
        project: direct.project,
        filename: `${direct.project}-1.0.tar.gz`,
        size: GiB,
        blobKey: 'files/direct',
        at: at(5),
      }),
    );
    expect(published.kind).toBe('published');

    const c = await created();
    await staged(c, 'py2', GiB);
    expect(rowsRead('alice')).toBe(1); // 23 published files are not read
    expect(await stage(c, 'py3', 4 * GiB + 1)).toEqual({ kind: 'over-quota', quota: 5 * GiB, used: GiB });
  });

  it('replacing a completed file counts the new size only', async () => {
    const a = await created();
    const f = await staged(a, 'py2', 4 * GiB);
    await store.updateFile(f.id, ['pending'], { status: 'completed', blobKey: `files/${f.id}` });
    const again = await store.createFile({ ...newWheel(a, 'py2', 5 * GiB) }, QUOTA);
    expect(again).toMatchObject({ kind: 'created', replaced: { id: f.id } });
  });

  it('applies no quota when none is given', async () => {
    const a = await created();
    expect((await store.createFile(newWheel(a, 'py2', 100 * GiB), { maxFiles: 10 })).kind).toBe('created');
  });

  it('holds under concurrent creations from two connections (as two processes)', async () => {
    const other = new SqliteSessionStore(dbFile);
    try {
      const a = await created();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? other : store).createFile(newWheel(a, `py${i + 10}`, GiB), QUOTA)),
      );
      expect(results.filter((r) => r.kind === 'created')).toHaveLength(5);
      expect(results.filter((r) => r.kind === 'over-quota')).toHaveLength(3);
    } finally {
      await other.close();
    }
  });
});

describe('new project names per principal and window (createSession)', () => {
  const newNames = { limit: 2, windowMs: 3600_000 };
  const create = (over: Partial<NewPublishingSession>, s = store) => s.createSession(newSession(over), { newNames });

  it('counts live reservations and registrations in the window; registered projects and other principals are free', async () => {
    const a = await create({ project: 'a1', createdAt: at(0) });
    expect(a.kind).toBe('created');
    // An empty session, published: the name is registered (PEP 694 FAQ).
    expect((await store.publish((a as { session: PublishingSessionRecord }).session.id, ['open'], at(1), { defer: false })).kind).toBe(
      'published',
    );
    expect((await create({ project: 'a2', createdAt: at(2) })).kind).toBe('created');
    expect(await create({ project: 'a3', createdAt: at(3) })).toEqual({
      kind: 'too-many-new-names',
      limit: 2,
      registered: 1,
      reserved: 1,
      retryAt: at(61), // the registration at minute 1 leaves the window
    });
    // A new version of a registered project is no new name.
    expect((await create({ project: 'a1', version: '2.0', releaseKey: '2', createdAt: at(4) })).kind).toBe('created');
    expect((await create({ project: 'b1', createdBy: 'bob', createdAt: at(4) })).kind).toBe('created');
  });

  it('a canceled reservation frees its place; a registration frees its place when it leaves the window', async () => {
    const a = await create({ project: 'c1', createdAt: at(0) });
    const b = await create({ project: 'c2', createdAt: at(0) });
    expect((await create({ project: 'c3', createdAt: at(1) })).kind).toBe('too-many-new-names');
    await store.cancelSession((a as { session: PublishingSessionRecord }).session.id, ['open'], at(2));
    expect((await create({ project: 'c3', createdAt: at(3) })).kind).toBe('created');
    await store.publish((b as { session: PublishingSessionRecord }).session.id, ['open'], at(5), { defer: false });
    expect(await create({ project: 'c4', createdAt: at(64) })).toMatchObject({
      kind: 'too-many-new-names',
      registered: 1,
      reserved: 1,
      retryAt: at(65),
    });
    expect((await create({ project: 'c4', createdAt: at(65) })).kind).toBe('created');
  });

  it('with reservations only, suggests retrying after one window', async () => {
    await create({ project: 'd1', createdAt: at(0) });
    await create({ project: 'd2', createdAt: at(0) });
    expect(await create({ project: 'd3', createdAt: at(10) })).toMatchObject({
      kind: 'too-many-new-names',
      registered: 0,
      reserved: 2,
      retryAt: at(70),
    });
  });

  it('holds under concurrent creations from two connections', async () => {
    const other = new SqliteSessionStore(dbFile);
    try {
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => create({ project: `e${i}` }, i % 2 ? other : store)));
      expect(results.filter((r) => r.kind === 'created')).toHaveLength(2);
    } finally {
      await other.close();
    }
  });
});

describe('the count behind maxFileSessions', () => {
  it('reads an index of the session, not the whole files table', () => {
    const db = new Database(dbFile, { readonly: true });
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT COUNT(*) FROM files WHERE session_id = ?').all('s') as { detail: string }[];
    db.close();
    expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING (COVERING )?INDEX files_session/);
  });
});
