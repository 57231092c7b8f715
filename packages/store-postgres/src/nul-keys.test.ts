/**
 * Lookups by a key with a NUL character (a URL such as `sessions/%00` reaches the store so):
 * PostgreSQL refuses such a parameter (22021), and the host answered 500 where it must answer 404
 * (PEP 694 "Publishing Session Status": an unknown session is 404). No stored value can hold a NUL,
 * so every read answers as for any other unknown key.
 */
import { afterEach, expect, it } from 'vitest';
import { openTestStore, type TestStore } from './testing/index.js';

let t: TestStore | undefined;
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});

it('reads by a key holding NUL find nothing, as for any unknown key', async () => {
  t = await openTestStore();
  const { store } = t;
  const nul = 'a\u0000b';
  expect(await store.getSession(nul)).toBeUndefined();
  expect(await store.getFile(nul)).toBeUndefined();
  expect(await store.listFiles(nul)).toEqual([]);
  expect(await store.listStagedFiles(nul)).toEqual([]);
  expect(await store.getSessionByStageToken(nul)).toBeUndefined();
  expect(await store.countLiveSessions(nul)).toBe(0);
  expect(await store.isPublishedProject(nul)).toBe(false);
  expect(await store.isFilenameTaken('foo', nul)).toBe(false);
  expect(await store.findPublishedIdentity(nul, 'foo-1.0')).toBeUndefined();
  expect(await store.listPublishedFiles(nul)).toEqual([]);
  expect(await store.getPublishedFile('foo', nul)).toBeUndefined();
  expect(await store.getPublishedCoreMetadata(nul, 'foo-1.0.tar.gz')).toBeUndefined();
  expect(await store.indexVersion({ kind: 'project', project: nul })).toBe(0);
  expect(await store.indexVersion({ kind: 'stage', sessionId: nul })).toBe(0);
  expect(await store.isBlobReferenced(`files/${nul}`)).toBe(false);
});
