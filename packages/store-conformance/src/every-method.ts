/**
 * A run through every method of a session store, for tests that look at what a backend does
 * for each (the SQLite and PostgreSQL stores explain every statement it sends, and fail on one
 * that reads a whole table). Both backends running the same calls means a method added to the
 * ports is looked at in both.
 */
import { distributionIdentity, type SessionStore } from '@pep694/core';
import { newDirectPublish } from './builders.js';
import { at, Scenario } from './scenario.js';

/**
 * Calls every method of `store` once or more, with the options that reach the most of its code:
 * the limits on new names, staged bytes and file sessions; a completed file replaced; a deferred
 * publish settled both ways; an expiry pass, a cancel, a legacy publish, the index's reads, and
 * the retention. Leases, `ping`, `countSessionsByStatus` and `close` are left out. Throws if a
 * step does not go as planned (the store is then not worth looking at).
 */
export async function callEveryMethod(store: SessionStore): Promise<void> {
  const s = new Scenario(store);
  const newNames = { limit: 10, windowMs: 60_000 };
  const limits = { maxFiles: 10, maxStagedBytes: 10_000, maxFileSessions: 20 };
  const session = async (version: string, project = 'foo') => {
    const r = await store.createSession(s.newSession({ project, version, stageToken: `token-${project}-${version}` }), { newNames });
    if (r.kind !== 'created') throw new Error(`createSession answered '${r.kind}'`);
    return r.session;
  };
  const completed = async (sessionId: string, filename: string) => {
    const r = await store.createFile(s.newFile(sessionId, filename), limits);
    if (r.kind !== 'created') throw new Error(`createFile answered '${r.kind}'`);
    const done = await store.updateFile(
      r.file.id,
      ['pending'],
      { status: 'completed', blobKey: `files/${r.file.id}`, coreMetadata: new Uint8Array([1]) },
      ['open', 'error'],
    );
    if (!done) throw new Error('updateFile found nothing to complete');
    return done;
  };

  const a = await session('1.0');
  const fa = await completed(a.id, 'foo-1.0.tar.gz');
  await completed(a.id, 'foo-1.0.tar.gz'); // replaces the completed file
  await store.getSession(a.id);
  await store.getSessionByStageToken('token-foo-1.0');
  await store.countLiveSessions('alice');
  await store.updateSession(a.id, ['open'], { expiresAt: at(90) });
  await store.getFile(fa.id);
  await store.listFiles(a.id);
  await store.listFiles(a.id, { includeCanceled: true });
  await store.listStagedFiles(a.id);
  await store.indexVersion({ kind: 'stage', sessionId: a.id });
  await store.publish(a.id, ['open'], at(2), { defer: true });
  await store.settlePublish(a.id, at(3), { ok: true });

  const b = await session('2.0');
  await completed(b.id, 'foo-2.0.tar.gz');
  await store.publish(b.id, ['open'], at(4), { defer: true });
  await store.settlePublish(b.id, at(5), { ok: false, notices: ['no'], fileNotices: { 'foo-2.0.tar.gz': ['no'] } });
  await store.listProcessing();
  await store.publish(b.id, ['error'], at(6), { defer: false });

  const c = await session('1.0', 'baz');
  await store.createFile(s.newFile(c.id, 'baz-1.0.tar.gz'), limits);
  await store.listExpiredSessions(at(100));
  await store.listExpiredFiles(at(100));
  await store.cancelSession(c.id, ['open'], at(9));

  // The legacy upload API's one-request publish, with the limit on new names.
  const direct = await store.publishFile(
    newDirectPublish({ sessionId: s.id('direct'), fileId: s.id('f-direct'), project: 'qux', filename: 'qux-1.0.tar.gz', at: at(10) }),
    { newNames },
  );
  if (direct.kind !== 'published') throw new Error(`publishFile answered '${direct.kind}'`);

  await store.isPublishedProject('foo');
  await store.isFilenameTaken('foo', 'foo-1.0.tar.gz');
  await store.findPublishedIdentity('foo', distributionIdentity('foo-1.0.tar.gz'));
  await store.listPublishedProjects();
  await store.listPublishedFiles('foo');
  await store.getPublishedFile('foo', 'foo-1.0.tar.gz');
  await store.getPublishedCoreMetadata('foo', 'foo-1.0.tar.gz');
  await store.getAttestations?.([fa.id]);
  await store.indexVersion({ kind: 'projects' });
  await store.indexVersion({ kind: 'project', project: 'foo' });
  await store.isBlobReferenced('files/x');
  await store.forgetEndedSessions(at(1000));
}
