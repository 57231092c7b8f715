/**
 * File identities in the SQLite store (issue #21, finding 4): a published file cannot be shadowed
 * by another spelling of its name. PEP 694 "Atomic Publication and Conflicts": the index "MUST
 * guarantee that it never publishes two files with the same name for the same release", and
 * "Create a File Upload Session": a file matching one already published "MUST" get 409. Names are
 * compared as installers compare them (`distributionIdentity`), not byte for byte.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { distributionIdentity } from '@pep694/core';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS } from './sqlite/migrations.js';
import { SqliteSessionStore } from './sqlite/store.js';
import { at, closeTempStore, newFile, openTempStore, storeSteps } from './sqlite-test-support.js';

let dir: string;
let dbFile: string;
let store: SqliteSessionStore;
beforeEach(() => {
  ({ dir, dbFile, store } = openTempStore('pep694-identity-', { fileIdentity: distributionIdentity }));
});
afterEach(() => closeTempStore(store, dir));
const { created, addCompleted, registered } = storeSteps(() => store);

/** A published release of foo holding `filenames`. */
async function published(filenames: readonly string[], releaseKey = '1'): Promise<void> {
  const s = await created({ releaseKey });
  for (const f of filenames) await addCompleted(s.id, f);
  expect((await store.publish(s.id, ['open'], at(2), { defer: false })).kind).toBe('published');
}

describe('createFile refuses another spelling of a published file', () => {
  // The three spellings of the finding, after foo-1.0-py3-none-any.whl was published.
  it.each(['Foo-1.0-py3-none-any.whl', 'foo-1.0.0-py3-none-any.whl', 'foo-1.0-PY3-none-any.whl', 'foo-1.0-py3-none-any.whl'])(
    '%s',
    async (spelling) => {
      await published(['foo-1.0-py3-none-any.whl']);
      const next = await created();
      expect(await store.createFile(newFile(next.id, spelling), { maxFiles: 10 })).toEqual({
        kind: 'published',
        filename: 'foo-1.0-py3-none-any.whl',
      });
      expect(await store.findPublishedIdentity('foo', distributionIdentity(spelling))).toBe('foo-1.0-py3-none-any.whl');
    },
  );

  it('one sdist per release, whatever its spelling (PEP 625)', async () => {
    await published(['foo-1.0.tar.gz']);
    const next = await created();
    for (const spelling of ['foo-1.0.0.tar.gz', 'Foo-1.0.tar.gz', 'FOO-1.0.0.0.tar.gz']) {
      expect(await store.createFile(newFile(next.id, spelling), { maxFiles: 10 })).toEqual({
        kind: 'published',
        filename: 'foo-1.0.tar.gz',
      });
    }
  });

  it('takes what is another distribution: other tags, a build tag, another version', async () => {
    await published(['foo-1.0-py3-none-any.whl', 'foo-1.0.tar.gz']);
    const next = await created();
    for (const other of ['foo-1.0-py2.py3-none-any.whl', 'foo-1.0-1-py3-none-any.whl', 'foo-1.0-cp312-cp312-linux_x86_64.whl']) {
      expect((await store.createFile(newFile(next.id, other), { maxFiles: 10 })).kind).toBe('created');
    }
    const later = await created({ version: '1.0.1', releaseKey: '1.0.1' });
    expect((await store.createFile(newFile(later.id, 'foo-1.0.1-py3-none-any.whl'), { maxFiles: 10 })).kind).toBe('created');
  });

  it('refuses a spelling claimed by a publish in flight', async () => {
    const a = await created();
    await addCompleted(a.id, 'foo-1.0-py2.py3-none-any.whl');
    expect((await store.publish(a.id, ['open'], at(2), { defer: true })).kind).toBe('processing');
    expect(await store.findPublishedIdentity('foo', distributionIdentity('foo-1.0-py3.py2-none-any.whl'))).toBe(
      'foo-1.0-py2.py3-none-any.whl',
    );
  });
});

describe('within one session', () => {
  it("answers 'same-distribution' for a second spelling, pending or completed", async () => {
    const s = await created();
    const first = await store.createFile(newFile(s.id, 'foo-1.0-py3-none-any.whl'), { maxFiles: 10 });
    expect(first.kind).toBe('created');
    const twin = await store.createFile(newFile(s.id, 'foo-1.0.0-py3-none-any.whl'), { maxFiles: 10 });
    expect(twin).toMatchObject({ kind: 'same-distribution', file: { filename: 'foo-1.0-py3-none-any.whl', status: 'pending' } });
    await store.updateFile((first as { file: { id: string } }).file.id, ['pending'], { status: 'completed', blobKey: 'files/x' });
    expect(await store.createFile(newFile(s.id, 'foo-1.0.0-py3-none-any.whl'), { maxFiles: 10 })).toMatchObject({
      kind: 'same-distribution',
      file: { status: 'completed' },
    });
    // The same name still replaces a completed file (PEP 694 "Replacing a Partially or Fully Uploaded File").
    expect((await store.createFile(newFile(s.id, 'foo-1.0-py3-none-any.whl'), { maxFiles: 10 })).kind).toBe('created');
  });

  it('a deleted spelling is no obstacle', async () => {
    const s = await created();
    const first = await store.createFile(newFile(s.id, 'foo-1.0.tar.gz'), { maxFiles: 10 });
    await store.updateFile((first as { file: { id: string } }).file.id, ['pending'], { status: 'canceled' });
    expect((await store.createFile(newFile(s.id, 'foo-1.0.0.tar.gz'), { maxFiles: 10 })).kind).toBe('created');
  });
});

describe('publish checks identities atomically', () => {
  it("answers 'conflict' naming the published spelling", async () => {
    // Two live sessions (two release keys, as the store does not read versions from file names)
    // staged two spellings before either published: the publish-time check is what stops the second.
    await registered();
    const a = await created({ releaseKey: '1' });
    const b = await created({ releaseKey: '1.0.0', version: '1.0.0' });
    await addCompleted(a.id, 'foo-1.0-py3-none-any.whl');
    await addCompleted(b.id, 'foo-1.0.0-py3-none-any.whl');
    await addCompleted(b.id, 'foo-1.0.0-py2-none-any.whl');
    expect((await store.publish(a.id, ['open'], at(2), { defer: false })).kind).toBe('published');
    expect(await store.publish(b.id, ['open'], at(3), { defer: false })).toEqual({
      kind: 'conflict',
      filenames: ['foo-1.0.0-py3-none-any.whl'],
      conflictsWith: { 'foo-1.0.0-py3-none-any.whl': 'foo-1.0-py3-none-any.whl' },
    });
    expect((await store.getSession(b.id))?.status).toBe('open');
    expect((await store.listPublishedFiles('foo')).map((f) => f.filename)).toEqual(['foo-1.0-py3-none-any.whl']);
  });

  it('a deferred publish holds the identity, not only the name', async () => {
    await registered();
    const a = await created({ releaseKey: '1' });
    const b = await created({ releaseKey: '1.0.0', version: '1.0.0' });
    await addCompleted(a.id, 'foo-1.0.tar.gz');
    await addCompleted(b.id, 'foo-1.0.0.tar.gz');
    expect((await store.publish(a.id, ['open'], at(2), { defer: true })).kind).toBe('processing');
    expect(await store.publish(b.id, ['open'], at(3), { defer: false })).toMatchObject({
      kind: 'conflict',
      conflictsWith: { 'foo-1.0.0.tar.gz': 'foo-1.0.tar.gz' },
    });
    // The claim is released on failure: then the other spelling may publish.
    await store.settlePublish(a.id, at(4), { ok: false, notices: ['scan failed'] });
    expect((await store.publish(b.id, ['open'], at(5), { defer: false })).kind).toBe('published');
  });

  describe('two connections on one file (as two processes)', () => {
    let other: SqliteSessionStore;
    beforeEach(() => {
      other = new SqliteSessionStore(dbFile);
    });
    afterEach(async () => {
      await other.close();
    });

    it('two sessions publishing two spellings at once: one wins', async () => {
      await registered();
      const a = await created({ releaseKey: '1' });
      const b = await created({ releaseKey: '1.0.0', version: '1.0.0' }, other);
      await addCompleted(a.id, 'Foo-1.0-py3-none-any.whl');
      await addCompleted(b.id, 'foo-1.0.0-py3-none-any.whl', other);
      const results = await Promise.all([
        store.publish(a.id, ['open'], at(2), { defer: false }),
        other.publish(b.id, ['open'], at(2), { defer: false }),
      ]);
      expect(results.map((r) => r.kind).sort()).toEqual(['conflict', 'published']);
      expect(await store.listPublishedFiles('foo')).toHaveLength(1);
    });

    it('the unique index decides when a check is missed (a path that skips it: one insert fails)', async () => {
      await published(['foo-1.0-py3-none-any.whl']);
      const db = new Database(dbFile);
      const insert = () =>
        db
          .prepare(
            `INSERT INTO published_files (project, filename, display_name, version, size, hashes, blob_key, published_at, session_id, file_id, identity)
             VALUES ('foo', 'foo-1.0.0-py3-none-any.whl', 'foo', '1.0.0', 1, '{}', 'b', 0, 's', 'f', ?)`,
          )
          .run(distributionIdentity('foo-1.0.0-py3-none-any.whl'));
      expect(insert).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE' }));
      db.close();
    });
  });
});

describe('migration of a database from before file identities', () => {
  /** A schema-2 file (the last without identities) holding published files, files and a claim. */
  function schema2File(): void {
    const db = new Database(dbFile);
    db.function('pep694_sha256', (t: unknown) => (typeof t === 'string' ? createHash('sha256').update(t).digest('hex') : null));
    for (const step of MIGRATIONS.slice(0, 2)) db.exec(step);
    db.pragma('user_version = 2');
    db.exec(`
      INSERT INTO sessions VALUES ('old1', 'foo', 'foo', '1.0', '1', 'published', NULL, 'alice', 0, 0, 10, 1, '[]', NULL);
      INSERT INTO sessions VALUES ('old2', 'foo', 'foo', '1.0.0', '1', 'published', NULL, 'mallory', 0, 0, 20, 0, '[]', NULL);
      INSERT INTO sessions VALUES ('live', 'foo', 'foo', '2.0', '2', 'open', NULL, 'alice', 0, ${at(60).getTime()}, NULL, 0, '[]', NULL);
      INSERT INTO projects VALUES ('foo', 'foo', 1, NULL);
      INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices)
        VALUES ('lf', 'live', 'foo-2.0.tar.gz', 5, '{}', 'm', 'pending', 0, ${at(60).getTime()}, '[]');
    `);
    // The finding: the same wheel published twice under two spellings, by two sessions.
    const publish = (filename: string, session: string, when: number) =>
      db
        .prepare(`INSERT INTO published_files VALUES ('foo', ?, 'foo', '1.0', 1, '{}', ?, ?, ?, ?, NULL, NULL)`)
        .run(filename, `files/${session}`, when, session, `${session}-f`);
    publish('foo-1.0-py3-none-any.whl', 'old1', 10);
    publish('Foo-1.0.0-py3-none-any.whl', 'old2', 20);
    db.close();
  }

  it('fills in identities; of duplicates the first published keeps the identity, all stay published', async () => {
    await store.close();
    fs.rmSync(dbFile);
    schema2File();
    store = new SqliteSessionStore(dbFile, { fileIdentity: distributionIdentity });
    const db = new Database(dbFile, { readonly: true });
    const rows = db.prepare('SELECT filename, identity FROM published_files ORDER BY published_at').all() as {
      filename: string;
      identity: string;
    }[];
    const file = db.prepare(`SELECT identity, created_by FROM files WHERE id = 'lf'`).get() as { identity: string; created_by: string };
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    const wheel = distributionIdentity('foo-1.0-py3-none-any.whl');
    expect(rows).toEqual([
      { filename: 'foo-1.0-py3-none-any.whl', identity: wheel },
      { filename: 'Foo-1.0.0-py3-none-any.whl', identity: `${wheel} duplicate Foo-1.0.0-py3-none-any.whl` },
    ]);
    expect(file).toEqual({ identity: distributionIdentity('foo-2.0.tar.gz'), created_by: 'alice' });
    expect(await store.listPublishedFiles('foo')).toHaveLength(2); // published files are immutable: none dropped
    // No third spelling gets in, and the holder named is the first published one.
    expect(await store.findPublishedIdentity('foo', distributionIdentity('foo-1.0.0.0-py3-none-any.whl'))).toBe('foo-1.0-py3-none-any.whl');
    const s = await created({ version: '1.0', releaseKey: '1' });
    expect(await store.createFile(newFile(s.id, 'Foo-1.0.0-py3-none-any.whl'), { maxFiles: 10 })).toEqual({
      kind: 'published',
      filename: 'Foo-1.0.0-py3-none-any.whl',
    });
  });

  it('a deferred publish in flight across the upgrade that would add a second spelling settles as a failure', async () => {
    await store.close();
    fs.rmSync(dbFile);
    schema2File();
    const db = new Database(dbFile);
    db.exec(`
      INSERT INTO sessions VALUES ('proc', 'foo', 'foo', '1.0.0.0', '1', 'processing', NULL, 'alice', 0, ${at(60).getTime()}, NULL, 0, '[]', NULL);
      INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices, blob_key)
        VALUES ('pf', 'proc', 'foo-1.0.0.0-py3-none-any.whl', 5, '{}', 'm', 'completed', 0, ${at(60).getTime()}, '[]', 'files/pf');
      INSERT INTO filename_claims VALUES ('foo', 'foo-1.0.0.0-py3-none-any.whl', 'proc', 'pf');
    `);
    db.close();
    store = new SqliteSessionStore(dbFile, { fileIdentity: distributionIdentity });
    const settled = await store.settlePublish('proc', at(5), { ok: true });
    expect(settled?.status).toBe('error'); // not stuck in processing on the unique index
    expect(settled?.notices[0]).toContain('foo-1.0.0.0-py3-none-any.whl (the same distribution as foo-1.0-py3-none-any.whl)');
    expect((await store.listPublishedFiles('foo')).map((f) => f.filename).sort()).toEqual([
      'Foo-1.0.0-py3-none-any.whl',
      'foo-1.0-py3-none-any.whl',
    ]);
  });

  it("opens such a file without options: the identities are core's distributionIdentity", async () => {
    await store.close();
    fs.rmSync(dbFile);
    schema2File();
    store = new SqliteSessionStore(dbFile);
    expect(await store.listPublishedFiles('foo')).toHaveLength(2);
    expect(await store.findPublishedIdentity('foo', distributionIdentity('foo-1.0-py3-none-any.whl'))).toBe('foo-1.0-py3-none-any.whl');
  });

  it('an empty database needs no option', async () => {
    await store.close();
    fs.rmSync(dbFile);
    store = new SqliteSessionStore(dbFile);
    expect(await store.findPublishedIdentity('foo', 'x')).toBeUndefined();
  });
});
