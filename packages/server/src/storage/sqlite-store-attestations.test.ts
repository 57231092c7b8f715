/**
 * PEP 740 attestations of published files outlive the file upload session rows they came from: the
 * reaper forgets ended sessions and their files after `retention`, and the published index must go
 * on serving each file's provenance (index-hosted-attestations "Provenance objects"). They are
 * copied at publish into published_attestations; the migration that adds it copies those of files
 * published before.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteSessionStore } from './sqlite/store.js';
import { at, closeTempStore, FILES_PUBLISHED_MIGRATION, openTempStore, storeSteps, UNDO_FILES_PUBLISHED } from './sqlite-test-support.js';

const bundles = [{ publisher: { kind: 'GitHub', claims: {} }, attestations: [{ version: 1 }] }];

let dir: string;
let dbFile: string;
let store: SqliteSessionStore;
beforeEach(() => {
  ({ dir, dbFile, store } = openTempStore('pep694-sqlite-attestations-'));
});
afterEach(() => closeTempStore(store, dir));
const { created, addCompleted } = storeSteps(() => store);

async function publishedWithAttestations() {
  const s = await created();
  const attested = await addCompleted(s.id, 'foo-1.0.tar.gz');
  await store.updateFile(attested.id, ['completed'], { attestations: bundles });
  const plain = await addCompleted(s.id, 'foo-1.0-py3-none-any.whl');
  expect((await store.publish(s.id, ['open'], at(2), { defer: false })).kind).toBe('published');
  return { attested, plain };
}

describe('attestations of published files', () => {
  it('are read by getAttestations, and still after the reaper forgot their session', async () => {
    const { attested, plain } = await publishedWithAttestations();
    expect(await store.getAttestations([attested.id, plain.id, 'unknown'])).toEqual(new Map([[attested.id, bundles]]));
    expect(await store.forgetEndedSessions(at(10_000))).toBe(1);
    expect(await store.getFile(attested.id)).toBeUndefined();
    expect(await store.getAttestations([attested.id, plain.id])).toEqual(new Map([[attested.id, bundles]]));
  });

  it('of files published before the table existed are copied by its migration', async () => {
    const { attested } = await publishedWithAttestations();
    await store.close();
    const db = new Database(dbFile);
    // Back to before the migration that adds the table (the one before files.published).
    db.exec(`${UNDO_FILES_PUBLISHED} DROP TABLE published_attestations;`);
    db.pragma(`user_version = ${FILES_PUBLISHED_MIGRATION - 1}`);
    db.close();
    store = new SqliteSessionStore(dbFile);
    expect(await store.getAttestations([attested.id])).toEqual(new Map([[attested.id, bundles]]));
  });

  it('answer for many ids at once (chunked under the bound-parameter limit)', async () => {
    const { attested } = await publishedWithAttestations();
    const ids = [...Array.from({ length: 1_500 }, (_, i) => `nobody-${i}`), attested.id];
    expect([...(await store.getAttestations(ids)).keys()]).toEqual([attested.id]);
  });
});
