/**
 * The session store conformance suite: every atomicity and uniqueness rule of the `SessionStore`
 * ports (`UploadStore`, `IndexReadStore`, `HousekeepingStore` in `@pep694/core`), one vitest test
 * per rule, on fresh data each time.
 *
 * ```ts
 * import { sessionStoreConformance } from '@pep694/store-conformance';
 * sessionStoreConformance({
 *   name: 'PostgresSessionStore',
 *   open: async () => {
 *     const db = await createTestDatabase();
 *     return { store: new PostgresSessionStore(db.url), connect: () => new PostgresSessionStore(db.url), dispose: () => db.drop() };
 *   },
 * });
 * ```
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect } from 'vitest';
import {
  distributionIdentity,
  releaseKey,
  type NewDirectPublish,
  type CreateSessionResult,
  type FileUploadRecord,
  type PublishingSessionRecord,
  type SessionStore,
} from '@pep694/core';
import { newDirectPublish } from './builders.js';
import { ruleTest } from './rule-test.js';
import { SESSION_STORE_RULES as R } from './rules.js';
import { at, Scenario } from './scenario.js';

/** The session a create answered with (`created`, `exists`, `name-reserved`); throws for answers that carry none. */
function sessionIn(r: CreateSessionResult): PublishingSessionRecord {
  if (!('session' in r)) throw new Error(`createSession answered '${r.kind}', which carries no session`);
  return r.session;
}

/** One test's store, on fresh, empty data. */
export interface SessionStoreUnderTest {
  readonly store: SessionStore;
  /**
   * Opens another handle on the same data (another connection, as a second process would have),
   * for the race rules; the suite closes it. Omit it when the backend has one handle only: the
   * races then run concurrently on `store`.
   */
  connect?(): SessionStore | Promise<SessionStore>;
  /** Closes `store` and removes its data; called after each test. */
  dispose(): Promise<void>;
}

export interface SessionStoreConformanceOptions {
  /** Names the suite in the report, e.g. `SqliteSessionStore`. */
  readonly name: string;
  /** A store on fresh, empty data, for one test. */
  open(): Promise<SessionStoreUnderTest> | SessionStoreUnderTest;
  /** How many concurrent calls the race rules make (default 24), spread over the store and a connected handle. */
  readonly concurrency?: number;
}

const ids = (records: readonly { readonly id: string }[]) => records.map((x) => x.id).sort();

export function sessionStoreConformance(options: SessionStoreConformanceOptions): void {
  const n = options.concurrency ?? 24;

  describe(`session store conformance: ${options.name}`, () => {
    let t: SessionStoreUnderTest;
    let store: SessionStore;
    let s: Scenario;
    let extra: SessionStore[] = [];

    beforeEach(async () => {
      t = await options.open();
      store = t.store;
      s = new Scenario(store);
    });
    afterEach(async () => {
      await Promise.all(extra.map((h) => h.close()));
      extra = [];
      await t?.dispose();
    });

    /** The handles races run on: the store and, where the backend has them, another connection. */
    async function handles(): Promise<SessionStore[]> {
      if (!t.connect) return [store];
      const other = await t.connect();
      extra.push(other);
      return [store, other];
    }
    /** Runs `n` calls at once, spread over the handles. */
    async function race<T>(call: (h: SessionStore, i: number) => Promise<T>): Promise<T[]> {
      const hs = await handles();
      return Promise.all(Array.from({ length: n }, (_, i) => call(hs[i % hs.length]!, i)));
    }

    // ---- Publishing sessions -----------------------------------------------------------------

    ruleTest(R.liveSessionUnique, async (must) => {
      await s.registered('foo'); // so that only the release decides, not the name reservation
      const live = await s.created({ version: '1.0' });
      const again = async (state: string) => {
        const r = await store.createSession(s.newSession({ version: '1.0' }));
        must(r.kind, `a second createSession for foo 1.0 answered '${r.kind}' while a session for it was ${state}`).toBe('exists');
        must(sessionIn(r).id, `the 'exists' answer must carry the live session (${state})`).toBe(live.id);
      };
      await again('open');
      await s.addCompleted(live.id, 'foo-1.0.tar.gz');
      expect((await store.publish(live.id, ['open'], at(1), { defer: true })).kind).toBe('processing');
      await again('processing');
      await store.settlePublish(live.id, at(2), { ok: false, notices: ['failed'] });
      await again('error');
      // A first release: the same release of a name only reserved is the holder itself, not another one.
      const first = await s.created({ project: 'fresh' });
      const r = await store.createSession(s.newSession({ project: 'fresh' }));
      must(r.kind, `a second createSession for an unpublished name's live release answered '${r.kind}'`).toBe('exists');
      must(sessionIn(r).id, "the 'exists' answer must carry the live session (first release)").toBe(first.id);
      must(await store.countLiveSessions('alice'), 'exactly the two live sessions must exist').toBe(2);
    });

    ruleTest(R.pep440EqualVersions, async (must) => {
      await s.registered('foo');
      const live = await s.created({ version: '1.0' });
      for (const version of ['1.0.0', '1', 'v1.0', '1.0.0.0']) {
        const r = await store.createSession(s.newSession({ version }));
        must(
          r.kind,
          `createSession for foo ${version} (release key ${releaseKey(version)}) answered '${r.kind}' while foo 1.0 was open`,
        ).toBe('exists');
        must(sessionIn(r).id, `foo ${version} must be answered with the live foo 1.0 session`).toBe(live.id);
      }
      const other = await store.createSession(s.newSession({ version: '1.0.1' }));
      must(other.kind, 'another release (1.0.1) is not the same release').toBe('created');
    });

    ruleTest(R.terminalSessionFreesRelease, async (must) => {
      await s.registered('foo');
      const canceled = await s.created();
      expect(await store.cancelSession(canceled.id, ['open'], at(1))).toBeDefined();
      const afterCancel = await store.createSession(s.newSession());
      must(afterCancel.kind, `createSession after the only session was canceled answered '${afterCancel.kind}'`).toBe('created');
      must(sessionIn(afterCancel).id, 'a new session, not the canceled one').not.toBe(canceled.id);
      expect((await store.publish(sessionIn(afterCancel).id, ['open'], at(2), { defer: false })).kind).toBe('published');
      const afterPublish = await store.createSession(s.newSession());
      must(afterPublish.kind, `createSession after the only live session was published answered '${afterPublish.kind}'`).toBe('created');
    });

    ruleTest(R.concurrentCreatesOneWinner, async (must) => {
      await s.registered('foo');
      for (const project of ['foo', 'fresh']) {
        const results = await race((h) => h.createSession(s.newSession({ project, version: '2.0' })));
        const winners = results.filter((r) => r.kind === 'created');
        must(winners.length, `${n} concurrent creates of ${project} 2.0 made ${winners.length} sessions`).toBe(1);
        const losers = results.filter((r) => r.kind !== 'created');
        must(
          losers.map((r) => r.kind),
          `every loser of ${project} 2.0 must answer 'exists'`,
        ).toEqual(losers.map(() => 'exists'));
        must(new Set(losers.map((r) => sessionIn(r).id)), `every loser of ${project} 2.0 must carry the winner`).toEqual(
          new Set([sessionIn(winners[0]!).id]),
        );
      }
    });

    ruleTest(R.firstReleaseReservesName, async (must) => {
      const first = await s.created({ project: 'fresh', version: '1.0' });
      must(first.reservesName, 'the first session of an unpublished name must reserve it').toBe(true);
      must(await store.isPublishedProject('fresh'), 'a reserved name is not a published project').toBe(false);
      must(await store.listPublishedProjects(), 'a reserved name must not be listed').toEqual([]);
      const expectReserved = async (state: string) => {
        const r = await store.createSession(s.newSession({ project: 'fresh', version: '2.0', createdBy: 'mallory' }));
        must(r.kind, `createSession of another creator's version answered '${r.kind}' while the holder was ${state}`).toBe('name-reserved');
        must(sessionIn(r).id, "the 'name-reserved' answer must carry the holder").toBe(first.id);
      };
      await expectReserved('open');
      await s.addCompleted(first.id, 'fresh-1.0.tar.gz');
      await store.publish(first.id, ['open'], at(1), { defer: true });
      await expectReserved('processing');
      await store.settlePublish(first.id, at(2), { ok: false, notices: ['failed'] });
      await expectReserved('error');
      // A registered project has nothing to reserve: several versions can be live at once.
      await s.registered('foo');
      const a = await s.created({ version: '1.0' });
      const b = await s.created({ version: '2.0' });
      must([a.reservesName, b.reservesName], 'sessions of a registered project reserve nothing').toEqual([false, false]);
    });

    ruleTest(R.reservationHolderOtherVersions, async (must) => {
      const first = await s.created({ project: 'fresh', version: '1.0' });
      const second = await store.createSession(s.newSession({ project: 'fresh', version: '2.0' }));
      must(second.kind, `the holder's creator starting another version answered '${second.kind}'`).toBe('created');
      must(sessionIn(second).reservesName, "the creator's other version is a first release too").toBe(true);
      must(await store.isPublishedProject('fresh'), 'a reserved name is not a published project').toBe(false);
      const other = await store.createSession(s.newSession({ project: 'fresh', version: '3.0', createdBy: 'mallory' }));
      must(other.kind, `another creator answered '${other.kind}'`).toBe('name-reserved');
      // Canceling the holder: the creator's other session keeps the name off other claimants.
      expect(await store.cancelSession(first.id, ['open'], at(1))).toBeDefined();
      const after = await store.createSession(s.newSession({ project: 'fresh', version: '3.0', createdBy: 'mallory' }));
      must(after.kind, `after the holder was canceled, another creator answered '${after.kind}'`).toBe('name-reserved');
      must(sessionIn(after).id, 'the reservation must pass to the live session of the same creator').toBe(sessionIn(second).id);
      // Canceling the last of them releases the name.
      expect(await store.cancelSession(sessionIn(second).id, ['open'], at(2))).toBeDefined();
      const free = await store.createSession(s.newSession({ project: 'fresh', version: '3.0', createdBy: 'mallory' }));
      must(free.kind, `after every session of the creator was canceled, another creator answered '${free.kind}'`).toBe('created');
    });

    ruleTest(R.concurrentFirstReleasesOneWinner, async (must) => {
      const results = await race((h, i) =>
        h.createSession(s.newSession({ project: 'fresh', version: `${i + 1}.0`, createdBy: `creator-${i}` })),
      );
      const winners = results.filter((r) => r.kind === 'created');
      must(winners.length, `${n} concurrent first-release creates made ${winners.length} sessions`).toBe(1);
      must(winners[0]!.session.reservesName, 'the winner must hold the reservation').toBe(true);
      const losers = results.filter((r) => r.kind !== 'created');
      must(
        losers.map((r) => r.kind),
        "every loser must answer 'name-reserved'",
      ).toEqual(losers.map(() => 'name-reserved'));
      must(new Set(losers.map((r) => sessionIn(r).id)), 'every loser must carry the winner').toEqual(new Set([sessionIn(winners[0]!).id]));
    });

    ruleTest(R.cancelReleasesReservation, async (must) => {
      const first = await s.created({ project: 'fresh', version: '1.0' });
      await s.addCompleted(first.id, 'fresh-1.0.tar.gz');
      expect(await store.cancelSession(first.id, ['open'], at(1))).toBeDefined();
      const next = await store.createSession(s.newSession({ project: 'fresh', version: '2.0', displayName: 'FRESH' }));
      must(next.kind, `after the holder was canceled, another version answered '${next.kind}'`).toBe('created');
      must(sessionIn(next).reservesName, 'the next first-release session must reserve the name anew').toBe(true);
      must(await store.isPublishedProject('fresh'), 'a canceled first release leaves no project').toBe(false);
      must(await store.isFilenameTaken('fresh', 'fresh-1.0.tar.gz'), 'a canceled first release leaves no filename').toBe(false);
      // Canceling from error (after a failed deferred publish) releases it too.
      await s.addCompleted(sessionIn(next).id, 'fresh-2.0.tar.gz');
      await store.publish(sessionIn(next).id, ['open'], at(2), { defer: true });
      await store.settlePublish(sessionIn(next).id, at(3), { ok: false, notices: ['failed'] });
      expect(await store.cancelSession(sessionIn(next).id, ['error'], at(4))).toBeDefined();
      const third = await store.createSession(s.newSession({ project: 'fresh', version: '3.0' }));
      must(third.kind, `after the holder was canceled from error, another version answered '${third.kind}'`).toBe('created');
    });

    ruleTest(R.publishMakesRegistrationPermanent, async (must) => {
      const first = await s.created({ project: 'fresh', version: '1.0' });
      await s.addCompleted(first.id, 'fresh-1.0.tar.gz');
      expect((await store.publish(first.id, ['open'], at(1), { defer: false })).kind).toBe('published');
      must(await store.isPublishedProject('fresh'), 'the published first release must register the project').toBe(true);
      must(await store.listPublishedProjects(), 'the registered project must be listed with its display name').toEqual([
        { project: 'fresh', displayName: 'Fresh' },
      ]);
      const b = await store.createSession(s.newSession({ project: 'fresh', version: '2.0', displayName: 'FRESH' }));
      const c = await store.createSession(s.newSession({ project: 'fresh', version: '3.0' }));
      must([b.kind, c.kind], 'two other versions of a registered project must both be created').toEqual(['created', 'created']);
      must([sessionIn(b).reservesName, sessionIn(c).reservesName], 'sessions of a registered project reserve nothing').toEqual([
        false,
        false,
      ]);
      await store.cancelSession(sessionIn(b).id, ['open'], at(2));
      must(await store.isPublishedProject('fresh'), 'canceling a later session must not unregister the project').toBe(true);
      must(await store.listPublishedProjects(), 'the first publisher keeps the display name').toEqual([
        { project: 'fresh', displayName: 'Fresh' },
      ]);
      // The same through a deferred publish: registered when it settles, not before.
      const deferred = await s.processing({ project: 'later' }, 'later-1.0.tar.gz');
      must(await store.isPublishedProject('later'), 'a publish still processing registers nothing yet').toBe(false);
      await store.settlePublish(deferred.session.id, at(3), { ok: true });
      must(await store.isPublishedProject('later'), 'a deferred first release must register the project when it settles').toBe(true);
    });

    ruleTest(R.emptyPublishRegistersName, async (must) => {
      const session = await s.created({ project: 'empty', version: '0.0.0a0' });
      const r = await store.publish(session.id, ['open'], at(1), { defer: false });
      must(r.kind, `publishing a session without files answered '${r.kind}'`).toBe('published');
      must(await store.isPublishedProject('empty'), 'the name must be registered').toBe(true);
      must(await store.listPublishedProjects(), 'the registered name must be listed').toEqual([{ project: 'empty', displayName: 'Empty' }]);
      must(await store.listPublishedFiles('empty'), 'nothing was published but the name').toEqual([]);
      const next = await store.createSession(s.newSession({ project: 'empty', version: '1.0' }));
      must(sessionIn(next).reservesName, 'a registered name needs no reservation').toBe(false);
    });

    ruleTest(R.countsLiveSessions, async (must) => {
      await s.registered('foo'); // alice's published session: not live
      const a = await s.created({ version: '1.0' });
      const b = await s.created({ version: '2.0' });
      await s.created({ version: '3.0', createdBy: 'bob' });
      must(await store.countLiveSessions('alice'), 'alice has two open sessions').toBe(2);
      await s.addCompleted(b.id, 'foo-2.0.tar.gz');
      await store.publish(b.id, ['open'], at(1), { defer: true });
      must(await store.countLiveSessions('alice'), 'a processing session is live').toBe(2);
      await store.settlePublish(b.id, at(2), { ok: false, notices: ['failed'] });
      must(await store.countLiveSessions('alice'), 'an error session is live').toBe(2);
      await store.cancelSession(a.id, ['open'], at(3));
      must(await store.countLiveSessions('alice'), 'a canceled session is not live').toBe(1);
      await store.publish(b.id, ['error'], at(4), { defer: false });
      must(await store.countLiveSessions('alice'), 'a published session is not live').toBe(0);
      must(await store.countLiveSessions('bob'), "bob's session is his").toBe(1);
      must(await store.countLiveSessions('carol'), 'carol has none').toBe(0);
    });

    ruleTest(R.recordsRoundTrip, async (must) => {
      const input = s.newSession({ stageToken: 'stage-token-0123456789abcdef' });
      const r = await store.createSession(input);
      const session: PublishingSessionRecord = {
        id: input.id,
        project: 'foo',
        displayName: 'Foo',
        version: '1.0',
        releaseKey: '1',
        status: 'open',
        stageToken: input.stageToken,
        createdBy: 'alice',
        createdAt: at(0),
        expiresAt: at(60),
        endedAt: null,
        reservesName: true,
        notices: [],
      };
      must(r, 'createSession must answer the session as created').toEqual({ kind: 'created', session });
      must(await store.getSession(input.id), 'getSession must read it back').toEqual(session);

      const fileInput = s.newFile(input.id, 'foo-1.0.tar.gz', {
        hashes: { sha256: 'ab'.repeat(32), blake2b: 'cd'.repeat(64) },
        instructions: { identifier: 'http-post-bytes', file_url: 'https://example.org/f' },
      });
      const file: FileUploadRecord = {
        id: fileInput.id,
        sessionId: input.id,
        filename: 'foo-1.0.tar.gz',
        size: fileInput.size,
        hashes: fileInput.hashes,
        mechanism: 'http-post-bytes',
        status: 'pending',
        createdAt: fileInput.createdAt,
        expiresAt: at(60),
        notices: [],
        blobKey: null,
        attestations: null,
        instructions: { identifier: 'http-post-bytes', file_url: 'https://example.org/f' },
        coreMetadata: null,
        requiresPython: null,
        coreMetadataSha256: null,
      };
      must(await store.createFile(fileInput, { maxFiles: 10 }), 'createFile must answer the file as created').toEqual({
        kind: 'created',
        file,
        replaced: null,
      });
      must(await store.getFile(file.id), 'getFile must read it back').toEqual(file);

      const metadata = new Uint8Array([77, 101, 116, 97, 0, 255]);
      const done = await store.updateFile(file.id, ['pending'], {
        status: 'completed',
        blobKey: `files/${file.id}`,
        attestations: [{ version: 1, envelope: { statement: 'e30=', signature: 'c2ln' } }],
        coreMetadata: metadata,
        requiresPython: '>=3.9',
        notices: ['checked'],
        expiresAt: at(90),
      });
      const completed = {
        ...file,
        status: 'completed' as const,
        blobKey: `files/${file.id}`,
        attestations: [{ version: 1, envelope: { statement: 'e30=', signature: 'c2ln' } }],
        coreMetadata: metadata,
        // PEP 658: the digest the index serves with the file, computed by the store as it stores the bytes.
        coreMetadataSha256: createHash('sha256').update(metadata).digest('hex'),
        requiresPython: '>=3.9',
        notices: ['checked'],
        expiresAt: at(90),
      };
      must(done, 'updateFile must answer the file as updated').toEqual(completed);
      must((await store.getFile(file.id))?.coreMetadata instanceof Uint8Array, 'coreMetadata must read back as a Uint8Array').toBe(true);
      must(await store.getFile(file.id), 'getFile must read the update back').toEqual(completed);
      must(await store.getSession('missing'), 'an unknown session is undefined').toBeUndefined();
      must(await store.getFile('missing'), 'an unknown file is undefined').toBeUndefined();
    });

    ruleTest(R.stageTokenExactMatch, async (must) => {
      const token = 'stage-token-0123456789abcdef';
      const withToken = await s.created({ stageToken: token });
      await s.created({ project: 'other', stageToken: null });
      must((await store.getSessionByStageToken(token))?.id, 'the session must be found by its token').toBe(withToken.id);
      for (const wrong of [`${token}0`, token.slice(0, -1), token.toUpperCase(), '', 'null']) {
        must(await store.getSessionByStageToken(wrong), `${JSON.stringify(wrong)} is not the token`).toBeUndefined();
      }
      await store.cancelSession(withToken.id, ['open'], at(1));
      must((await store.getSessionByStageToken(token))?.status, 'a canceled session is still found (the caller decides what to show)').toBe(
        'canceled',
      );
    });

    // ---- File upload sessions ----------------------------------------------------------------

    ruleTest(R.liveFileUnique, async (must) => {
      const session = await s.created();
      const f = await s.addFile(session.id, 'foo-1.0.tar.gz');
      for (const status of ['pending', 'processing', 'error'] as const) {
        const now = await store.updateFile(f.id, ['pending', 'processing', 'error'], { status });
        const r = await store.createFile(s.newFile(session.id, 'foo-1.0.tar.gz'), { maxFiles: 10 });
        must(r, `a second createFile of foo-1.0.tar.gz answered '${r.kind}' while the first was ${status}`).toEqual({
          kind: 'exists',
          file: now,
        });
      }
      must((await store.listFiles(session.id)).length, 'the session holds one file of the name').toBe(1);
    });

    ruleTest(R.completedFileReplaced, async (must) => {
      const session = await s.created();
      const old = await s.addCompleted(session.id, 'foo-1.0.tar.gz');
      const r = await store.createFile(s.newFile(session.id, 'foo-1.0.tar.gz'), { maxFiles: 10 });
      must(r.kind, `createFile over a completed file answered '${r.kind}'`).toBe('created');
      if (r.kind !== 'created') return;
      must(r.replaced, 'the answer must carry the replaced file, now canceled').toEqual({ ...old, status: 'canceled' });
      must(await store.getFile(old.id), 'the replaced file must be canceled').toEqual({ ...old, status: 'canceled' });
      must(ids(await store.listFiles(session.id)), 'only the new file is live').toEqual([r.file.id]);
      must(ids(await store.listFiles(session.id, { includeCanceled: true })), 'the replaced file stays as history').toEqual(
        ids([old, r.file]),
      );
      // A canceled (deleted) file is no obstacle and is not "replaced".
      const gone = await s.addFile(session.id, 'foo-1.0-py3-none-any.whl');
      await store.updateFile(gone.id, ['pending'], { status: 'canceled' });
      const again = await store.createFile(s.newFile(session.id, 'foo-1.0-py3-none-any.whl'), { maxFiles: 10 });
      must(again.kind, `createFile over a canceled file answered '${again.kind}'`).toBe('created');
      must(again.kind === 'created' && again.replaced, 'a canceled file is not replaced').toBeNull();
    });

    ruleTest(R.concurrentFileCreatesOneWinner, async (must) => {
      const session = await s.created();
      const results = await race((h) => h.createFile(s.newFile(session.id, 'foo-1.0.tar.gz'), { maxFiles: 100 }));
      const winners = results.filter((r) => r.kind === 'created');
      must(winners.length, `${n} concurrent creates of foo-1.0.tar.gz made ${winners.length} files`).toBe(1);
      const first = winners[0];
      const winner = first?.kind === 'created' ? first.file.id : '';
      const losers = results.filter((r) => r.kind !== 'created');
      must(
        losers.map((r) => (r.kind === 'exists' ? r.file.id : r.kind)),
        "every loser must answer 'exists' with the winner",
      ).toEqual(losers.map(() => winner));
      must((await store.listFiles(session.id)).length, 'the session holds one file').toBe(1);
    });

    ruleTest(R.onlyEditableSessionsTakeFiles, async (must) => {
      const { session } = await s.processing({}, 'foo-1.0.tar.gz');
      must(await store.createFile(s.newFile(session.id, 'foo-1.0-py3-none-any.whl'), { maxFiles: 10 }), 'a processing session').toEqual({
        kind: 'session-state',
        status: 'processing',
      });
      await store.settlePublish(session.id, at(2), { ok: false, notices: ['failed'] });
      must(
        (await store.createFile(s.newFile(session.id, 'foo-1.0-py3-none-any.whl'), { maxFiles: 10 })).kind,
        'an error session takes files',
      ).toBe('created');
      await store.cancelSession(session.id, ['error'], at(3));
      must(await store.createFile(s.newFile(session.id, 'foo-1.0-py2-none-any.whl'), { maxFiles: 10 }), 'a canceled session').toEqual({
        kind: 'session-state',
        status: 'canceled',
      });
      const published = await s.created({ project: 'bar' });
      await store.publish(published.id, ['open'], at(4), { defer: false });
      must(await store.createFile(s.newFile(published.id, 'bar-1.0.tar.gz'), { maxFiles: 10 }), 'a published session').toEqual({
        kind: 'session-state',
        status: 'published',
      });
      await must(
        store.createFile(s.newFile('missing', 'foo-1.0.tar.gz'), { maxFiles: 10 }),
        'an unknown session must reject',
      ).rejects.toThrow();
    });

    ruleTest(R.takenFilenameRefused, async (must) => {
      await s.registered('foo');
      const a = await s.created({ version: '1.0' });
      await s.addCompleted(a.id, 'foo-1.0.tar.gz');
      await store.publish(a.id, ['open'], at(1), { defer: false });
      const b = await s.created({ version: '1.0' }); // the release is published; a new session may add files
      must(await store.createFile(s.newFile(b.id, 'foo-1.0.tar.gz'), { maxFiles: 10 }), 'a published filename').toEqual({
        kind: 'published',
        filename: 'foo-1.0.tar.gz',
      });
      must(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz'), 'a published filename is taken').toBe(true);
      await s.processing({ version: '2.0' }, 'foo-2.0.tar.gz');
      must(
        await store.createFile(s.newFile(b.id, 'foo-2.0.tar.gz'), { maxFiles: 10 }),
        'a filename reserved by a deferred publish',
      ).toEqual({ kind: 'published', filename: 'foo-2.0.tar.gz' });
      must(await store.isFilenameTaken('foo', 'foo-2.0.tar.gz'), 'a reserved filename is taken').toBe(true);
      must(await store.isFilenameTaken('foo', 'foo-3.0.tar.gz'), 'an unused filename is free').toBe(false);
      must((await store.createFile(s.newFile(b.id, 'foo-1.0-py3-none-any.whl'), { maxFiles: 10 })).kind, 'an unused filename').toBe(
        'created',
      );
      await s.registered('bar');
      const c = await s.created({ project: 'bar' });
      must(
        (await store.createFile(s.newFile(c.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).kind,
        "another project's namespace is separate",
      ).toBe('created');
      must(await store.isFilenameTaken('bar', 'foo-1.0.tar.gz'), "another project's namespace is separate").toBe(false);
    });

    ruleTest(R.maxFilesPerSession, async (must) => {
      const session = await s.created();
      const a = await s.addCompleted(session.id, 'a-1.0.tar.gz');
      const b = await s.addFile(session.id, 'b-1.0.tar.gz');
      must(await store.createFile(s.newFile(session.id, 'c-1.0.tar.gz'), { maxFiles: 2 }), 'a third file with maxFiles 2').toEqual({
        kind: 'too-many-files',
        limit: 2,
      });
      const replaced = await store.createFile(s.newFile(session.id, a.filename), { maxFiles: 2 });
      must(replaced.kind, 'replacing a completed file at the limit does not add one').toBe('created');
      await store.updateFile(b.id, ['pending'], { status: 'canceled' });
      must((await store.createFile(s.newFile(session.id, 'c-1.0.tar.gz'), { maxFiles: 2 })).kind, 'a canceled file does not count').toBe(
        'created',
      );
    });

    ruleTest(R.maxFileSessions, async (must) => {
      await s.registered('foo'); // so that a second release can have its own session
      const session = await s.created();
      // Two created and deleted: their rows stay (a canceled file's own status URL still answers).
      for (const name of ['a-1.0.tar.gz', 'b-1.0.tar.gz']) {
        const f = await s.addFile(session.id, name);
        await store.updateFile(f.id, ['pending'], { status: 'canceled' });
      }
      const limits = { maxFiles: 10, maxFileSessions: 3 };
      must(
        (await store.createFile(s.newFile(session.id, 'c-1.0.tar.gz'), limits)).kind,
        'a third file session with maxFileSessions 3',
      ).toBe('created');
      must(await store.createFile(s.newFile(session.id, 'd-1.0.tar.gz'), limits), 'a fourth, the two canceled ones counting').toEqual({
        kind: 'too-many-files',
        limit: 3,
        canceledIncluded: true,
      });
      must(
        (await store.createFile(s.newFile(session.id, 'd-1.0.tar.gz'), { maxFiles: 10 })).kind,
        'without maxFileSessions, no bound',
      ).toBe('created');
      const other = await s.created({ version: '2.0' });
      must((await store.createFile(s.newFile(other.id, 'e-2.0.tar.gz'), limits)).kind, "another session's count is its own").toBe(
        'created',
      );
    });

    ruleTest(R.filesInCreationOrder, async (must) => {
      const session = await s.created();
      for (const [id, minute] of [
        ['file-b', 1],
        ['file-a', 1],
        ['file-c', 0],
        ['file-d', 2],
      ] as const) {
        await store.createFile(s.newFile(session.id, `${id}-1.0.tar.gz`, { id, createdAt: at(minute) }), { maxFiles: 10 });
      }
      await store.updateFile('file-d', ['pending'], { status: 'canceled' });
      must(
        (await store.listFiles(session.id)).map((f) => f.id),
        'by createdAt, then id; canceled left out',
      ).toEqual(['file-c', 'file-a', 'file-b']);
      must(
        (await store.listFiles(session.id, { includeCanceled: true })).map((f) => f.id),
        'with canceled when asked',
      ).toEqual(['file-c', 'file-a', 'file-b', 'file-d']);
      must(await store.listFiles('missing'), 'an unknown session has no files').toEqual([]);
    });

    ruleTest(R.listingsWithoutMetadataBytes, async (must) => {
      const session = await s.created();
      const done = await s.addCompleted(session.id, 'foo-1.0.tar.gz');
      await s.addFile(session.id, 'foo-1.0-py3-none-any.whl');
      const full = await store.getFile(done.id);
      must(full?.coreMetadata, 'getFile reads the metadata bytes').toEqual(done.coreMetadata);
      const { coreMetadata: _bytes, ...summary } = full!;
      must(summary.coreMetadataSha256, 'the file has a metadata digest').toMatch(/^[0-9a-f]{64}$/);
      const listings = {
        listFiles: await store.listFiles(session.id),
        'listFiles with canceled': await store.listFiles(session.id, { includeCanceled: true }),
        listStagedFiles: await store.listStagedFiles(session.id),
      };
      for (const [listing, files] of Object.entries(listings)) {
        const listed = files.find((f) => f.id === done.id);
        must(listed, `${listing} lists the completed file without coreMetadata`).not.toHaveProperty('coreMetadata');
        must(listed, `${listing} lists it as getFile reads it, but for the bytes`).toEqual(summary);
      }
      for (const f of listings.listFiles) must(f, `listFiles lists ${f.filename} without coreMetadata`).not.toHaveProperty('coreMetadata');
    });

    // ---- Publication -------------------------------------------------------------------------

    ruleTest(R.publishAllOrNothingUnfinished, async (must) => {
      const session = await s.created({ project: 'fresh' });
      await s.addCompleted(session.id, 'fresh-1.0.tar.gz');
      await s.addFile(session.id, 'fresh-1.0-py3-none-any.whl');
      const errored = await s.addFile(session.id, 'fresh-1.0-cp312-cp312-linux_x86_64.whl');
      await store.updateFile(errored.id, ['pending'], { status: 'error' });
      const deleted = await s.addFile(session.id, 'fresh-1.0-py2-none-any.whl');
      await store.updateFile(deleted.id, ['pending'], { status: 'canceled' });
      const unfinished = {
        kind: 'unfinished',
        files: [
          { filename: 'fresh-1.0-cp312-cp312-linux_x86_64.whl', status: 'error' },
          { filename: 'fresh-1.0-py3-none-any.whl', status: 'pending' },
        ],
      };
      for (const defer of [false, true]) {
        const r = await store.publish(session.id, ['open'], at(1), { defer });
        must(r, `publish (defer: ${defer}) with a pending and an error file answered '${r.kind}'`).toEqual(unfinished);
        must(await store.listPublishedFiles('fresh'), 'nothing may be published').toEqual([]);
        must(await store.isFilenameTaken('fresh', 'fresh-1.0.tar.gz'), 'the completed file may not be published or reserved').toBe(false);
        must(await store.isPublishedProject('fresh'), 'the project may not be registered').toBe(false);
        must(await store.getSession(session.id), 'the session stays as it was').toEqual(session);
        must((await store.listFiles(session.id)).map((f) => f.status).sort(), 'the files stay as they were').toEqual([
          'completed',
          'error',
          'pending',
        ]);
      }
    });

    /** A direct publish (the legacy upload API) of `filename` in `project` by `createdBy`. */
    const direct = (filename: string, over: Partial<NewDirectPublish> = {}, h: SessionStore = store) => {
      const project = over.project ?? 'foo';
      return h.publishFile(
        newDirectPublish({
          sessionId: s.id('legacy-s'),
          fileId: s.id('legacy-f'),
          project,
          filename,
          hashes: { sha256: createHash('sha256').update(filename).digest('hex') },
          blobKey: `files/${filename}`,
          coreMetadata: new TextEncoder().encode(`Metadata-Version: 2.1\nName: ${project}\n`),
          at: at(1),
          ...over,
        }),
        over.project === undefined ? {} : { newNames: { limit: 100, windowMs: 3600_000 } },
      );
    };

    ruleTest(R.directPublishSharesNamespace, async (must) => {
      // A live session of the same release does not stand in the way: only identities conflict.
      const live = await s.created({ version: '1.0' });
      const first = await direct('foo-1.0.tar.gz');
      must(first.kind, `publishFile of a new file answered '${first.kind}'`).toBe('published');
      must(await store.isPublishedProject('foo'), 'publishFile must register the project').toBe(true);
      must(
        (await store.listPublishedFiles('foo')).map((f) => f.filename),
        'the directly published file must be listed at once',
      ).toEqual(['foo-1.0.tar.gz']);
      must((await store.getPublishedFile('foo', 'foo-1.0.tar.gz'))?.coreMetadataSha256, 'its metadata digest is stored with it').toMatch(
        /^[0-9a-f]{64}$/,
      );
      const again = await direct('foo-1.0.0.tar.gz');
      must(again, 'a second spelling of a published identity must answer conflict naming the published file').toEqual({
        kind: 'conflict',
        filename: 'foo-1.0.tar.gz',
      });
      must(await store.findPublishedIdentity('foo', distributionIdentity('foo-1.0.tar.gz')), 'findPublishedIdentity sees it').toBe(
        'foo-1.0.tar.gz',
      );
      const created = await store.createFile(s.newFile(live.id, 'foo-1.0.tar.gz'), { maxFiles: 10 });
      must(created.kind, "createFile of a directly published filename must answer 'published'").toBe('published');
      // A session file completed before the direct publish conflicts at publish time.
      await s.addCompleted(live.id, 'foo-1.0-py3-none-any.whl');
      must((await direct('foo-1.0-py3-none-any.whl')).kind, 'a completed (unpublished) session file does not hold the name').toBe(
        'published',
      );
      const publish = await store.publish(live.id, ['open'], at(2), { defer: false });
      must(publish.kind, 'the session publish of a directly published identity must conflict').toBe('conflict');
      // A deferred publish's claim holds its filenames against publishFile.
      const { file } = await s.processing({ version: '2.0' }, 'foo-2.0.tar.gz');
      must(await direct(file.filename, { version: '2.0' }), 'a filename claimed by a deferred publish must conflict').toEqual({
        kind: 'conflict',
        filename: 'foo-2.0.tar.gz',
      });
    });

    ruleTest(R.directPublishNameRules, async (must) => {
      const holder = await s.created({ project: 'fresh', version: '1.0', createdBy: 'mallory' });
      const refused = await direct('fresh-2.0.tar.gz', { project: 'fresh', version: '2.0' });
      must(refused.kind, "publishFile under another creator's first-release reservation").toBe('name-reserved');
      must('session' in refused && refused.session.id, "the 'name-reserved' answer must carry the holder").toBe(holder.id);
      must(await store.listPublishedFiles('fresh'), 'nothing was published').toEqual([]);
      const own = await direct('fresh-2.0.tar.gz', { project: 'fresh', version: '2.0', createdBy: 'mallory' });
      must(own.kind, "publishFile under the creator's own reservation").toBe('published');
      must(await store.isPublishedProject('fresh'), 'the name is registered').toBe(true);
      // A new name counts against the creator's limit of new names.
      const limited = await store.publishFile(
        newDirectPublish({
          sessionId: s.id('legacy-s'),
          fileId: s.id('legacy-f'),
          project: 'other',
          filename: 'other-1.0.tar.gz',
          size: 1,
          hashes: {},
          blobKey: 'files/x',
          createdBy: 'mallory',
          at: at(3),
        }),
        { newNames: { limit: 1, windowMs: 3600_000 } },
      );
      must(limited.kind, 'a second new name past a limit of one').toBe('too-many-new-names');
    });

    ruleTest(R.concurrentDirectAndSessionPublish, async (must) => {
      await s.registered('foo');
      const sessions: PublishingSessionRecord[] = [];
      for (let i = 0; i < n / 2; i++) {
        const session = await s.created({ version: `1.0.post${i}`, releaseKey: `foo-race-${i}` });
        await s.addCompleted(session.id, 'foo-1.0.tar.gz');
        sessions.push(session);
      }
      const results = await race(async (h, i) =>
        i % 2 === 0 && sessions[i / 2]
          ? (await h.publish(sessions[i / 2]!.id, ['open'], at(2), { defer: false })).kind
          : (await direct('foo-1.0.tar.gz', {}, h)).kind,
      );
      must(results.filter((k) => k === 'published').length, `outcomes: ${results.join(', ')}`).toBe(1);
      must(
        results.filter((k) => k !== 'published' && k !== 'conflict'),
        'every other answer must be conflict',
      ).toEqual([]);
      must(
        (await store.listPublishedFiles('foo')).map((f) => f.filename),
        'the file is published once',
      ).toEqual(['foo-1.0.tar.gz']);
    });

    ruleTest(R.publishAllOrNothingConflict, async (must) => {
      await s.registered('foo');
      const a = await s.created({ version: '1.0' });
      const b = await s.created({ version: '2.0' });
      const c = await s.created({ version: '3.0' });
      await s.addCompleted(a.id, 'x-1.tar.gz');
      await s.addCompleted(b.id, 'y-1.tar.gz');
      for (const name of ['x-1.tar.gz', 'y-1.tar.gz', 'z-1.tar.gz']) await s.addCompleted(c.id, name);
      await store.publish(a.id, ['open'], at(1), { defer: false });
      await store.publish(b.id, ['open'], at(1), { defer: true });
      for (const defer of [false, true]) {
        const r = await store.publish(c.id, ['open'], at(2), { defer });
        must(r, `publish (defer: ${defer}) with one published and one reserved filename answered '${r.kind}'`).toMatchObject({
          kind: 'conflict',
          filenames: ['x-1.tar.gz', 'y-1.tar.gz'],
        });
        must(await store.isFilenameTaken('foo', 'z-1.tar.gz'), 'the free file may not be published or reserved').toBe(false);
        must(
          (await store.listPublishedFiles('foo')).map((f) => f.sessionId),
          'only the first session published',
        ).toEqual([a.id]);
        must(await store.getSession(c.id), 'the session stays as it was').toEqual(c);
      }
    });

    ruleTest(R.immediatePublish, async (must) => {
      const session = await s.created({ project: 'imm' });
      const files = [await s.addCompleted(session.id, 'imm-1.0.tar.gz'), await s.addCompleted(session.id, 'imm-1.0-py3-none-any.whl')];
      must(await store.publish(session.id, ['error'], at(3), { defer: false }), 'an open session is not in [error]').toEqual({
        kind: 'session-state',
        status: 'open',
      });
      const r = await store.publish(session.id, ['open', 'error'], at(3), { defer: false });
      must(r, 'the answer carries the ended session').toEqual({
        kind: 'published',
        session: { ...session, status: 'published', endedAt: at(3) },
      });
      const expected = files.map((f) => ({
        project: 'imm',
        displayName: 'Imm',
        version: '1.0',
        filename: f.filename,
        size: f.size,
        hashes: f.hashes,
        blobKey: f.blobKey,
        publishedAt: at(3),
        sessionId: session.id,
        fileId: f.id,
        coreMetadataSha256: f.coreMetadataSha256,
        requiresPython: '>=3.9',
      }));
      const byName = <T extends { filename: string }>(list: readonly T[]) => [...list].sort((x, y) => (x.filename < y.filename ? -1 : 1));
      must(byName(await store.listPublishedFiles('imm')), 'every file is published with its data').toEqual(byName(expected));
      for (const f of expected) must(await store.getPublishedFile('imm', f.filename), `getPublishedFile ${f.filename}`).toEqual(f);
      for (const f of files) {
        must(
          await store.getPublishedCoreMetadata('imm', f.filename),
          `getPublishedCoreMetadata ${f.filename} reads the bytes back`,
        ).toEqual(f.coreMetadata);
      }
      must(await store.getPublishedFile('imm', 'imm-2.0.tar.gz'), 'an unpublished filename').toBeUndefined();
      must(await store.isFilenameTaken('imm', 'imm-1.0.tar.gz'), 'a published filename is taken').toBe(true);
      must(await store.isPublishedProject('imm'), 'the project is registered').toBe(true);
      must(await store.listPublishedProjects(), 'and listed').toEqual([{ project: 'imm', displayName: 'Imm' }]);
      must(await store.publish(session.id, ['open', 'error'], at(4), { defer: false }), 'a published session publishes no more').toEqual({
        kind: 'session-state',
        status: 'published',
      });
      await must(store.publish('missing', ['open'], at(1), { defer: false }), 'an unknown session must reject').rejects.toThrow();
    });

    ruleTest(R.deferredPublishReservesFilenames, async (must) => {
      await s.registered('foo');
      const a = await s.created({ version: '1.0' });
      const b = await s.created({ version: '2.0' });
      await s.addCompleted(a.id, 'foo-1.0.tar.gz');
      await s.addCompleted(b.id, 'foo-1.0.tar.gz');
      await s.addCompleted(b.id, 'foo-2.0.tar.gz');
      const r = await store.publish(a.id, ['open'], at(1), { defer: true });
      must(r, 'a deferred publish moves the session to processing').toEqual({
        kind: 'processing',
        session: { ...a, status: 'processing' },
      });
      must(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz'), 'the filename is reserved').toBe(true);
      must(await store.getPublishedFile('foo', 'foo-1.0.tar.gz'), 'a reserved file is not published').toBeUndefined();
      must(await store.listPublishedFiles('foo'), 'nothing is visible before the publish settles').toEqual([]);
      for (const defer of [false, true]) {
        const other = await store.publish(b.id, ['open'], at(2), { defer });
        must(other, `another session's publish (defer: ${defer}) of the reserved filename answered '${other.kind}'`).toMatchObject({
          kind: 'conflict',
          filenames: ['foo-1.0.tar.gz'],
        });
      }
      must(await store.isFilenameTaken('foo', 'foo-2.0.tar.gz'), "the other session's free file stays free").toBe(false);
    });

    ruleTest(R.settleOkPublishes, async (must) => {
      const open = await s.created({ project: 'bar' });
      must(await store.settlePublish(open.id, at(1), { ok: true }), 'an open session does not settle').toBeUndefined();
      must(await store.settlePublish('missing', at(1), { ok: true }), 'an unknown session does not settle').toBeUndefined();
      const { session, file } = await s.processing({ project: 'fresh' }, 'fresh-1.0.tar.gz');
      const done = await store.settlePublish(session.id, at(4), { ok: true });
      must(done, 'the settled session is published').toEqual({ ...session, status: 'published', endedAt: at(4) });
      must(await store.getPublishedFile('fresh', 'fresh-1.0.tar.gz'), 'the reserved file is published').toMatchObject({
        fileId: file.id,
        blobKey: file.blobKey,
        publishedAt: at(4),
        sessionId: session.id,
      });
      must(await store.isFilenameTaken('fresh', 'fresh-1.0.tar.gz'), 'and taken').toBe(true);
      must(await store.isPublishedProject('fresh'), 'the project is registered').toBe(true);
      must(await store.settlePublish(session.id, at(5), { ok: true }), 'a published session does not settle again').toBeUndefined();
    });

    ruleTest(R.settleFailureReleases, async (must) => {
      await s.registered('foo');
      const session = await s.created({ version: '1.0' });
      const a = await s.addCompleted(session.id, 'foo-1.0.tar.gz');
      const b = await s.addCompleted(session.id, 'foo-1.0-py3-none-any.whl');
      await store.publish(session.id, ['open'], at(1), { defer: true });
      const other = await s.created({ version: '2.0' });
      must(
        await store.createFile(s.newFile(other.id, 'foo-1.0.tar.gz'), { maxFiles: 10 }),
        'while reserved, the filename is refused',
      ).toEqual({ kind: 'published', filename: 'foo-1.0.tar.gz' });
      const failed = await store.settlePublish(session.id, at(2), {
        ok: false,
        notices: ['foo-1.0.tar.gz: metadata mismatch'],
        fileNotices: { 'foo-1.0.tar.gz': ['metadata mismatch'] },
      });
      must(failed, 'the session moves to error with the notices').toEqual({
        ...session,
        status: 'error',
        notices: ['foo-1.0.tar.gz: metadata mismatch'],
      });
      must(await store.getFile(a.id), 'the file named in fileNotices carries them').toEqual({ ...a, notices: ['metadata mismatch'] });
      must(await store.getFile(b.id), 'the other file is unchanged').toEqual(b);
      must(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz'), 'the reservation is released').toBe(false);
      must(await store.listPublishedFiles('foo'), 'nothing was published').toEqual([]);
      must(
        (await store.createFile(s.newFile(other.id, 'foo-1.0.tar.gz'), { maxFiles: 10 })).kind,
        'the released filename can be uploaded elsewhere',
      ).toBe('created');
      must(await store.settlePublish(session.id, at(3), { ok: false, notices: [] }), 'an error session does not settle').toBeUndefined();
      // From error the session publishes again; another session's unpublished file of the name is no obstacle.
      const again = await store.publish(session.id, ['open', 'error'], at(4), { defer: false });
      must(again.kind, 'the session can publish again from error').toBe('published');
      must((await store.listPublishedFiles('foo')).map((f) => f.filename).sort(), 'both files').toEqual([
        'foo-1.0-py3-none-any.whl',
        'foo-1.0.tar.gz',
      ]);
    });

    ruleTest(R.concurrentPublishesOneWinner, async (must) => {
      await s.registered('foo');
      const sessions: PublishingSessionRecord[] = [];
      for (let i = 0; i < n; i++) {
        const session = await s.created({ version: `${i + 1}.0` });
        await s.addCompleted(session.id, 'foo-1.0.tar.gz');
        sessions.push(session);
      }
      const results = await race((h, i) => h.publish(sessions[i]!.id, ['open'], at(5), { defer: i % 2 === 1 }));
      const winners = results.filter((r) => r.kind === 'published' || r.kind === 'processing');
      must(winners.length, `${n} concurrent publishes of foo-1.0.tar.gz had ${winners.length} winners`).toBe(1);
      const losers = results.filter((r) => r.kind !== 'published' && r.kind !== 'processing');
      must(losers, "every loser must answer 'conflict'").toMatchObject(
        losers.map(() => ({ kind: 'conflict', filenames: ['foo-1.0.tar.gz'] })),
      );
      must((await store.listPublishedFiles('foo')).length, 'at most one file of the name is published').toBeLessThanOrEqual(1);
    });

    // ---- Compare-and-set ---------------------------------------------------------------------

    ruleTest(R.sessionCompareAndSet, async (must) => {
      const session = await s.created();
      const extended = await store.updateSession(session.id, ['open', 'error'], { expiresAt: at(120) });
      must(extended, 'a matching status applies the patch').toEqual({ ...session, expiresAt: at(120) });
      const noticed = await store.updateSession(session.id, ['open'], { notices: ['hello'] });
      must(noticed, 'only the given keys change').toEqual({ ...session, expiresAt: at(120), notices: ['hello'] });
      must(
        await store.updateSession(session.id, ['processing', 'error'], { expiresAt: at(1) }),
        'a lost race returns undefined',
      ).toBeUndefined();
      must(await store.updateSession(session.id, [], { expiresAt: at(1) }), 'an empty expect matches nothing').toBeUndefined();
      must(await store.updateSession('missing', ['open'], { expiresAt: at(1) }), 'an unknown session').toBeUndefined();
      must(await store.getSession(session.id), 'lost races changed nothing').toEqual(noticed);
      await store.cancelSession(session.id, ['open'], at(2));
      must(
        (await store.updateSession(session.id, ['canceled'], { notices: ['expired'] }))?.notices,
        'a canceled session can take notices',
      ).toEqual(['expired']);
    });

    ruleTest(R.fileCompareAndSet, async (must) => {
      await s.registered('foo');
      const session = await s.created();
      const f = await s.addFile(session.id, 'foo-1.0.tar.gz');
      const done = await store.updateFile(f.id, ['pending'], {
        status: 'completed',
        blobKey: 'files/k',
        attestations: [{ a: 1 }],
        coreMetadata: new Uint8Array([1, 2]),
        requiresPython: '>=3.8',
      });
      const digest = createHash('sha256')
        .update(new Uint8Array([1, 2]))
        .digest('hex');
      must(done, 'a matching status applies the patch').toEqual({
        ...f,
        status: 'completed',
        blobKey: 'files/k',
        attestations: [{ a: 1 }],
        coreMetadata: new Uint8Array([1, 2]),
        coreMetadataSha256: digest,
        requiresPython: '>=3.8',
      });
      must(await store.updateFile(f.id, ['pending'], { status: 'error' }), 'a lost race returns undefined').toBeUndefined();
      must(await store.updateFile(f.id, [], { status: 'error' }), 'an empty expect matches nothing').toBeUndefined();
      must(await store.updateFile('missing', ['pending'], { status: 'error' }), 'an unknown file').toBeUndefined();
      must(await store.getFile(f.id), 'lost races changed nothing').toEqual(done);
      const cleared = await store.updateFile(f.id, ['completed'], { blobKey: null, coreMetadata: null, attestations: null });
      must(cleared, 'null clears (the metadata digest with the metadata)').toEqual({
        ...done,
        blobKey: null,
        coreMetadata: null,
        coreMetadataSha256: null,
        attestations: null,
      });
      must(await store.updateFile(f.id, ['completed'], {}), 'an empty patch changes nothing').toEqual(cleared);
      await store.publish(session.id, ['open'], at(1), { defer: true });
      must(
        await store.updateFile(f.id, ['completed'], { status: 'canceled' }, ['open', 'error']),
        'the session is processing, not in [open, error]',
      ).toBeUndefined();
      must(await store.updateFile(f.id, ['completed'], { notices: ['x'] }, []), 'an empty session expect matches nothing').toBeUndefined();
      must(
        (await store.updateFile(f.id, ['completed'], { notices: ['x'] }, ['processing']))?.notices,
        'a matching session status applies',
      ).toEqual(['x']);
      must((await store.getFile(f.id))?.status, 'the file stayed completed').toBe('completed');
    });

    ruleTest(R.concurrentCompareAndSetOneWinner, async (must) => {
      const session = await s.created();
      const f = await s.addFile(session.id, 'foo-1.0.tar.gz');
      const files = await race((h, i) => h.updateFile(f.id, ['pending'], { status: 'completed', notices: [`winner ${i}`] }));
      const applied = files.filter((r) => r !== undefined);
      must(applied.length, `${n} concurrent updateFile from pending applied ${applied.length} times`).toBe(1);
      must(await store.getFile(f.id), "the stored file is the winner's").toEqual(applied[0]);
      const cancels = await race((h, i) => h.cancelSession(session.id, ['open'], at(i)));
      const canceled = cancels.filter((r) => r !== undefined);
      must(canceled.length, `${n} concurrent cancelSession from open applied ${canceled.length} times`).toBe(1);
      must((await store.getSession(session.id))?.endedAt, "the stored session is the winner's").toEqual(canceled[0]!.session.endedAt);
    });

    ruleTest(R.cancelEndsSessionAndFiles, async (must) => {
      await s.registered('foo');
      const session = await s.created();
      const done = await s.addCompleted(session.id, 'foo-1.0.tar.gz');
      const pending = await s.addFile(session.id, 'foo-1.0-py3-none-any.whl');
      const errored = await s.addFile(session.id, 'foo-1.0-cp311-cp311-linux_x86_64.whl');
      await store.updateFile(errored.id, ['pending'], { status: 'error' });
      const deleted = await s.addFile(session.id, 'foo-1.0-py2-none-any.whl');
      const deletedNow = await store.updateFile(deleted.id, ['pending'], { status: 'canceled' });
      must(await store.cancelSession(session.id, ['error'], at(5)), 'an open session is not in [error]').toBeUndefined();
      const r = await store.cancelSession(session.id, ['open', 'error'], at(5));
      must(r?.session, 'the session is canceled and ended').toEqual({ ...session, status: 'canceled', endedAt: at(5) });
      must(r?.files, 'every file it canceled is returned as canceled, in creation order').toEqual([
        { ...done, status: 'canceled' },
        { ...pending, status: 'canceled' },
        { ...errored, status: 'canceled' },
      ]);
      must(await store.getFile(deleted.id), 'an already canceled file is left as it was').toEqual(deletedNow);
      must(await store.listFiles(session.id), 'no live file is left').toEqual([]);
      must(await store.cancelSession(session.id, ['open', 'error'], at(6)), 'a canceled session cancels no more').toBeUndefined();
      // A processing session is not in [open, error]; canceled anyway (from processing), its reservation goes.
      const { session: busy } = await s.processing({ version: '2.0' }, 'foo-2.0.tar.gz');
      must(await store.cancelSession(busy.id, ['open', 'error'], at(7)), 'a processing session is not in [open, error]').toBeUndefined();
      must(await store.isFilenameTaken('foo', 'foo-2.0.tar.gz'), 'still reserved').toBe(true);
      must((await store.cancelSession(busy.id, ['processing'], at(8)))?.files.length, 'canceled from processing').toBe(1);
      must(await store.isFilenameTaken('foo', 'foo-2.0.tar.gz'), "a canceled session's filename reservations are released").toBe(false);
    });

    // ---- Housekeeping ------------------------------------------------------------------------

    ruleTest(R.expiredSessionsListed, async (must) => {
      await s.registered('foo');
      const open = await s.created({ version: '1.0', expiresAt: at(10) });
      const { session: errored } = await s.processing({ version: '2.0', expiresAt: at(20) }, 'foo-2.0.tar.gz');
      await store.settlePublish(errored.id, at(2), { ok: false, notices: [] });
      const later = await s.created({ version: '3.0', expiresAt: at(30) });
      await s.processing({ version: '4.0', expiresAt: at(5) }, 'foo-4.0.tar.gz');
      const canceled = await s.created({ version: '5.0', expiresAt: at(5) });
      await store.cancelSession(canceled.id, ['open'], at(3));
      const published = await s.created({ version: '6.0', expiresAt: at(5) });
      await store.publish(published.id, ['open'], at(3), { defer: false });
      must(await store.listExpiredSessions(at(9)), 'nothing has expired at minute 9').toEqual([]);
      must(ids(await store.listExpiredSessions(at(20))), 'open and error sessions at or past expiry').toEqual(ids([open, errored]));
      must(ids(await store.listExpiredSessions(at(10_000))), 'never processing, canceled or published ones').toEqual(
        ids([open, errored, later]),
      );
    });

    ruleTest(R.expiredFilesListed, async (must) => {
      await s.registered('foo');
      const session = await s.created({ version: '1.0' });
      const early = await s.addFile(session.id, 'a-1.0.tar.gz', { expiresAt: at(10) });
      const late = await s.addFile(session.id, 'b-1.0.tar.gz', { expiresAt: at(30) });
      const completed = await s.addFile(session.id, 'c-1.0.tar.gz', { expiresAt: at(10) });
      await store.updateFile(completed.id, ['pending'], { status: 'completed', blobKey: 'files/c' });
      const busy = await s.addFile(session.id, 'd-1.0.tar.gz', { expiresAt: at(10) });
      await store.updateFile(busy.id, ['pending'], { status: 'processing' });
      const deleted = await s.addFile(session.id, 'e-1.0.tar.gz', { expiresAt: at(10) });
      await store.updateFile(deleted.id, ['pending'], { status: 'canceled' });
      const { session: errored } = await s.processing({ version: '2.0' }, 'foo-2.0.tar.gz');
      await store.settlePublish(errored.id, at(2), { ok: false, notices: [] });
      const inError = await s.addFile(errored.id, 'f-1.0.tar.gz', { expiresAt: at(10) });
      const gone = await s.created({ version: '3.0' });
      await s.addFile(gone.id, 'g-1.0.tar.gz', { expiresAt: at(10) });
      await store.cancelSession(gone.id, ['open'], at(3));
      // A pending file in a processing session: no transition the host makes, but the session's
      // status must decide, not only the file's.
      const { session: publishing, file: claimed } = await s.processing({ version: '4.0' }, 'foo-4.0.tar.gz');
      await store.updateFile(claimed.id, ['completed'], { status: 'pending', expiresAt: at(10) });
      must((await store.getSession(publishing.id))?.status, 'setup: the session is processing').toBe('processing');
      must(await store.listExpiredFiles(at(9)), 'nothing has expired at minute 9').toEqual([]);
      must(ids(await store.listExpiredFiles(at(10))), 'pending files at or past expiry, in open and error sessions').toEqual(
        ids([early, inError]),
      );
      must(ids(await store.listExpiredFiles(at(30))), 'and later ones once their time comes').toEqual(ids([early, inError, late]));
    });

    ruleTest(R.forgetEndedSessions, async (must) => {
      const published = await s.created({ version: '1.0' });
      const publishedFile = await s.addCompleted(published.id, 'foo-1.0.tar.gz');
      await store.publish(published.id, ['open'], at(10), { defer: false });
      const canceled = await s.created({ version: '2.0' });
      const canceledFile = await s.addCompleted(canceled.id, 'foo-2.0.tar.gz');
      await store.cancelSession(canceled.id, ['open'], at(20));
      const live = await s.created({ version: '3.0' });
      await s.addCompleted(live.id, 'foo-3.0.tar.gz');
      const { session: errored } = await s.processing({ version: '4.0' }, 'foo-4.0.tar.gz');
      await store.settlePublish(errored.id, at(2), { ok: false, notices: [] });

      must(await store.forgetEndedSessions(at(10)), 'a session that ended at the cutoff is kept (strictly before)').toBe(0);
      must(await store.forgetEndedSessions(at(21)), 'both terminal sessions are forgotten').toBe(2);
      must(await store.getSession(published.id), 'the published session is forgotten').toBeUndefined();
      must(await store.getSession(canceled.id), 'the canceled session is forgotten').toBeUndefined();
      must(await store.getFile(publishedFile.id), "the published session's file row is forgotten").toBeUndefined();
      must(await store.getFile(canceledFile.id), "the canceled session's file row is forgotten").toBeUndefined();
      must(await store.listFiles(canceled.id, { includeCanceled: true }), 'no rows are left').toEqual([]);
      must((await store.getSession(live.id))?.status, 'an open session stays').toBe('open');
      must((await store.getSession(errored.id))?.status, 'an error session stays').toBe('error');
      must((await store.listFiles(live.id)).length, 'its files stay').toBe(1);
      must(await store.getPublishedFile('foo', 'foo-1.0.tar.gz'), 'the published file stays').toMatchObject({
        fileId: publishedFile.id,
        sessionId: published.id,
        blobKey: publishedFile.blobKey,
      });
      must(await store.isPublishedProject('foo'), 'the registration stays').toBe(true);
      must(await store.isFilenameTaken('foo', 'foo-1.0.tar.gz'), 'the published filename stays taken').toBe(true);
      must(await store.forgetEndedSessions(at(10_000)), 'live sessions are never forgotten').toBe(0);
    });

    ruleTest(R.processingListed, async (must) => {
      await s.registered('foo');
      const open = await s.created({ version: '1.0' });
      const verifying = await s.addFile(open.id, 'foo-1.0.tar.gz');
      await store.updateFile(verifying.id, ['pending'], { status: 'processing', attestations: [{ kept: true }] });
      await s.addFile(open.id, 'foo-1.0-py3-none-any.whl');
      const { session: publishing } = await s.processing({ version: '2.0' }, 'foo-2.0.tar.gz');
      const listed = await store.listProcessing();
      must(ids(listed.sessions), 'the processing session').toEqual([publishing.id]);
      must(ids(listed.files), 'the processing file').toEqual([verifying.id]);
      must(listed.files[0]?.attestations, 'with what was stored with it').toEqual([{ kept: true }]);
      await store.settlePublish(publishing.id, at(3), { ok: true });
      await store.updateFile(verifying.id, ['processing'], { status: 'error' });
      must(await store.listProcessing(), 'nothing once they moved on').toEqual({ sessions: [], files: [] });
    });

    ruleTest(R.blobReferences, async (must) => {
      const published = await s.created({ version: '1.0' });
      const publishedFile = await s.addCompleted(published.id, 'foo-1.0.tar.gz');
      await store.publish(published.id, ['open'], at(10), { defer: false });
      const canceled = await s.created({ version: '2.0' });
      const canceledFile = await s.addCompleted(canceled.id, 'foo-2.0.tar.gz');
      await store.cancelSession(canceled.id, ['open'], at(20));
      const live = await s.created({ version: '3.0' });
      const liveFile = await s.addCompleted(live.id, 'foo-3.0.tar.gz');
      must(await store.isBlobReferenced(liveFile.blobKey!), "a live file's blob").toBe(true);
      must(await store.isBlobReferenced(publishedFile.blobKey!), "a published file's blob").toBe(true);
      await store.forgetEndedSessions(at(21));
      must(await store.isBlobReferenced(publishedFile.blobKey!), "a published file's blob, after its session was forgotten").toBe(true);
      must(await store.isBlobReferenced(canceledFile.blobKey!), "a forgotten canceled file's blob is not").toBe(false);
      must(await store.isBlobReferenced(liveFile.blobKey!), "a live file's blob, after forgetting others").toBe(true);
      must(await store.isBlobReferenced('files/none'), 'a key nothing refers to').toBe(false);
    });

    ruleTest(R.workLeasesExclusive, async (must) => {
      // Optional in the port: a backend one process owns (embedded SQLite) has no other node to exclude.
      if (!store.acquireLease || !store.releaseLease) return;
      const minute = 60_000;
      must(await store.acquireLease('verify:f-1', 'node-a', minute), 'a free key is taken').toBe(true);
      must(await store.acquireLease('verify:f-1', 'node-b', minute), 'another owner cannot take a held key').toBe(false);
      must(await store.acquireLease('verify:f-1', 'node-a', minute), 'the holder renews its lease').toBe(true);
      must(await store.acquireLease('verify:f-2', 'node-b', minute), 'keys are independent').toBe(true);
      await store.releaseLease('verify:f-1', 'node-b');
      must(await store.acquireLease('verify:f-1', 'node-c', minute), "releasing someone else's lease does nothing").toBe(false);
      await store.releaseLease('verify:f-1', 'node-a');
      must(await store.acquireLease('verify:f-1', 'node-c', minute), 'a released key is taken by another owner').toBe(true);
      // A holder that dies stops renewing: once its lease runs out (by the backend's clock), another takes over.
      must(await store.acquireLease('reaper', 'node-dead', 200), 'a short lease').toBe(true);
      must(await store.acquireLease('reaper', 'node-b', minute), 'not before it runs out').toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 400));
      must(await store.acquireLease('reaper', 'node-b', minute), 'an expired lease is taken over').toBe(true);
      must(await store.acquireLease('reaper', 'node-dead', minute), 'and its old holder cannot take it back').toBe(false);
      const results = await race((h, i) => h.acquireLease!('publish:s-1', `node-${i}`, minute));
      must(results.filter(Boolean).length, `${n} concurrent acquires of one free key by different owners`).toBe(1);
    });
  });
}
