/**
 * Concurrent creates of file upload sessions in ONE publishing session (CI uploading its wheels
 * in parallel): they queue on the session (an advisory lock taken before the SERIALIZABLE
 * transaction begins) instead of conflicting, being aborted and retried. The limits stay held by
 * the transactions, with the queue and without it (a queue lock that cannot be had in time).
 *
 * Measured before the queue (2026-12-07, loaded 2-core machine): 64 concurrent creates over
 * three pools were retried 9 to 11 times each (serialization failures: each create reads the
 * session's files and adds one, and the files trigger bumps the session row); with it, none.
 *
 * Updates of one session's files (completions, cancels) queue on the same queue: the files trigger
 * bumps the session row on each of them too. Without it (2026-12-07), 64 concurrent completions
 * over three pools were retried 1.6 to 3.2 times each; with it, none. The update rules (a stale
 * expected status or session state changes nothing, one winner per file, no lost column) hold
 * queued, behind a lock held elsewhere and with `queueWrites: false`.
 *
 * Creates of one principal in several sessions conflict through the staged-bytes quota (each sums
 * the principal's staged files): they queue on the principal too (see the README).
 */
import { EDITABLE_SESSION_STATES, type CreateFileLimits, type CreateFileResult, type NewFileUpload } from '@pep694/core';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { writeQueueLockKey, type WriteStats } from './connection.js';
import type { PostgresSessionStore } from './store.js';
import { at, newUpload, openSession } from './store.test-support.js';
import { openTestStore, type TestStore } from './testing/index.js';
import { sessionWriteQueue } from './uploads.js';

let t: TestStore | undefined;
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});

/** A store and `nodes - 1` more pools on one fresh database, as that many nodes would have. */
async function nodes(n: number, opts: Parameters<typeof openTestStore>[0] = {}): Promise<PostgresSessionStore[]> {
  t = await openTestStore(opts);
  const stores = [t.store];
  while (stores.length < n) stores.push(await t.connect());
  return stores;
}

const session = (store: PostgresSessionStore, id = 's-1') => openSession(store, id);

function createFile(
  store: PostgresSessionStore,
  sessionId: string,
  filename: string,
  limits: CreateFileLimits,
  over: Partial<NewFileUpload> = {},
): Promise<CreateFileResult> {
  return store.createFile(newUpload(sessionId, filename, over), limits);
}

/** `i`-th wheel of the release: a distinct filename and distribution identity. */
const wheel = (i: number) => `foo-1.0-${i + 1}-py3-none-any.whl`;

const retries = (stores: PostgresSessionStore[]) =>
  stores
    .map((s) => s.writeStats())
    .reduce((sum, w: WriteStats) => sum + w.serializationRetries + w.deadlockRetries + w.uniqueViolationRetries, 0);
const queueTimeouts = (stores: PostgresSessionStore[]) => stores.reduce((sum, s) => sum + s.writeStats().queueTimeouts, 0);

const generous: CreateFileLimits = { maxFiles: 1000, maxStagedBytes: 10 ** 12 };

/** Another connection (another node's, as far as the store can tell) holding the session's write queue; `end()` lets go. */
async function holdQueue(sessionId: string): Promise<pg.Client> {
  const holder = new pg.Client({ connectionString: t!.database.url });
  await holder.connect();
  await holder.query('SELECT pg_advisory_lock($1::bigint)', [writeQueueLockKey(sessionWriteQueue(sessionId)).bigint]);
  return holder;
}

/** Runs `step` while another connection holds the session's queue: it must still be waiting 300 ms later, and resolve once the queue is let go. */
async function waitsForHolder<T>(sessionId: string, step: () => Promise<T>): Promise<T> {
  const holder = await holdQueue(sessionId);
  try {
    let done = false;
    const running = step().finally(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(done).toBe(false);
    await holder.query('SELECT pg_advisory_unlock($1::bigint)', [writeQueueLockKey(sessionWriteQueue(sessionId)).bigint]);
    return await running;
  } finally {
    await holder.end();
  }
}

it(
  '64 concurrent creates of distinct files into one session over three nodes all succeed, with next to no retries',
  { timeout: 120_000 },
  async () => {
    const stores = await nodes(3);
    const id = await session(stores[0]!);
    const n = 64;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => createFile(stores[i % 3]!, id, wheel(i), generous)));
    expect(results.map((r) => r.kind)).toEqual(Array<string>(n).fill('created'));
    expect(await stores[0]!.listFiles(id)).toHaveLength(n);
    // Without the queue each create was retried 9 to 11 times (600 to 700 retries here). With it
    // none, unless a queue lock timed out on a very loaded machine (each of those may retry).
    expect(retries(stores)).toBeLessThanOrEqual(4 + 4 * queueTimeouts(stores));
    expect(queueTimeouts(stores)).toBeLessThanOrEqual(1);
  },
);

describe("one principal's creates in several sessions (the staged-bytes quota's queue)", () => {
  /** A create as the service makes it: with its creator, alice. */
  const createBy = (store: PostgresSessionStore, sessionId: string, filename: string, limits: CreateFileLimits) =>
    createFile(store, sessionId, filename, limits, { createdBy: 'alice' });
  /** `n` sessions of alice's, of projects p0, p1, … */
  const sessions = (store: PostgresSessionStore, n: number) =>
    Promise.all(Array.from({ length: n }, async (_, k) => ({ id: await openSession(store, `s-p${k}`, `p${k}`), project: `p${k}` })));

  it('64 concurrent creates in 8 sessions over three nodes all succeed, with few retries', { timeout: 120_000 }, async () => {
    const stores = await nodes(3);
    const all = await sessions(stores[0]!, 8);
    const results = await Promise.all(
      all.flatMap(({ id, project }, k) =>
        Array.from({ length: 8 }, (_, i) => createBy(stores[(k + i) % 3]!, id, `${project}-1.0-${i + 1}-py3-none-any.whl`, generous)),
      ),
    );
    expect(results.map((r) => r.kind)).toEqual(Array<string>(64).fill('created'));
    // Each create sums alice's staged files and adds one. Queued on her session only, they were
    // retried 170 to 240 times here; queued on her principal too, 14 to 21 (what is left: the
    // sessions' index ranges sharing pages, which SERIALIZABLE tracks by page).
    expect(retries(stores)).toBeLessThanOrEqual(48 + 4 * queueTimeouts(stores));
    expect(queueTimeouts(stores)).toBeLessThanOrEqual(1);
  });

  it(
    "creates (in their session's and principal's queues) and completions (in their session's) at once: all done, none stuck",
    { timeout: 120_000 },
    async () => {
      const stores = await nodes(3);
      const all = await sessions(stores[0]!, 4);
      const first = await Promise.all(
        all.flatMap(({ id, project }) =>
          Array.from({ length: 4 }, (_, i) => createBy(stores[0]!, id, `${project}-1.0-${i + 1}-py3-none-any.whl`, generous)),
        ),
      );
      const mixed = await Promise.all([
        ...first.map((r, i) => {
          if (r.kind !== 'created') throw new Error(r.kind);
          return stores[i % 3]!.updateFile(r.file.id, ['pending'], { status: 'completed', blobKey: `files/${r.file.id}` });
        }),
        ...all.flatMap(({ id, project }, k) =>
          Array.from({ length: 4 }, (_, i) => createBy(stores[(k + i) % 3]!, id, `${project}-1.0-${i + 5}-py3-none-any.whl`, generous)),
        ),
      ]);
      expect(mixed.slice(0, 16).map((f) => (f as { status: string } | undefined)?.status)).toEqual(Array<string>(16).fill('completed'));
      expect(mixed.slice(16).map((r) => (r as CreateFileResult).kind)).toEqual(Array<string>(16).fill('created'));
      expect(queueTimeouts(stores)).toBe(0);
    },
  );

  it('the quota holds under 24 concurrent creates in 6 sessions, queued or not', { timeout: 120_000 }, async () => {
    for (const queueWrites of [true, false]) {
      const stores = await nodes(2, { queueWrites });
      const all = await sessions(stores[0]!, 6);
      // 1000 bytes a file: 7000 allows 7 of the 24.
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) => {
          const { id, project } = all[i % 6]!;
          return createBy(stores[i % 2]!, id, `${project}-1.0-${i + 1}-py3-none-any.whl`, { maxFiles: 100, maxStagedBytes: 7000 });
        }),
      );
      expect(results.filter((r) => r.kind === 'created')).toHaveLength(7);
      expect(results.filter((r) => r.kind === 'over-quota')).toHaveLength(17);
      await t?.dispose();
      t = undefined;
    }
  });
});

const MODES = {
  queued: 'queued',
  blocked: 'with the queue lock held elsewhere (each step runs without it after its timeout)',
  unqueued: 'with queueWrites: false (all at once, settled by SERIALIZABLE alone)',
} as const;

for (const [mode, how] of Object.entries(MODES)) {
  it(`the limits hold under 24 concurrent creates into one session, ${how}`, { timeout: 120_000 }, async () => {
    const stores = await nodes(2, { writeQueueTimeoutMillis: 100, queueWrites: mode !== 'unqueued' });
    const id = await session(stores[0]!);
    // A connection of nobody's holding the session's queue lock: every step waits 100 ms and runs
    // without it, as it would behind a stuck holder; the SERIALIZABLE transactions still hold the rules.
    const blocker = mode === 'blocked' ? await holdQueue(id) : undefined;
    try {
      const race = (call: (store: PostgresSessionStore, i: number) => Promise<CreateFileResult>) =>
        Promise.all(Array.from({ length: 24 }, (_, i) => call(stores[i % 2]!, i)));

      // PEP 694 "Multiple Session Creation Requests" (for files): one filename, one file upload session.
      const dup = await race((s) => createFile(s, id, 'foo-1.0.tar.gz', generous));
      expect(dup.filter((r) => r.kind === 'created')).toHaveLength(1);
      expect(dup.filter((r) => r.kind === 'exists')).toHaveLength(23);

      // The file count per session: 5 in all, the one above included.
      const many = await race((s, i) => createFile(s, id, wheel(i), { maxFiles: 5 }));
      expect(many.filter((r) => r.kind === 'created')).toHaveLength(4);
      expect(many.filter((r) => r.kind === 'too-many-files')).toHaveLength(20);
      expect(await stores[0]!.listFiles(id)).toHaveLength(5);

      // The staged-bytes quota of the creator (1000 bytes a file; 7000 allows 2 more than the 5).
      const quota = await race((s, i) => createFile(s, id, wheel(100 + i), { maxFiles: 100, maxStagedBytes: 7000 }));
      expect(quota.filter((r) => r.kind === 'created')).toHaveLength(2);
      expect(quota.filter((r) => r.kind === 'over-quota')).toHaveLength(22);
      expect(await stores[0]!.listFiles(id)).toHaveLength(7);

      if (mode === 'blocked') expect(queueTimeouts(stores)).toBeGreaterThanOrEqual(3 * 24);
      else expect(queueTimeouts(stores)).toBe(0);
    } finally {
      await blocker?.end();
    }
  });
}

it('a queued create waits for a holder in another node, then runs at once when it lets go', { timeout: 60_000 }, async () => {
  const [store] = await nodes(1);
  const id = await session(store!);
  expect((await waitsForHolder(id, () => createFile(store!, id, wheel(0), generous))).kind).toBe('created');
  expect(store!.writeStats().queueTimeouts).toBe(0);
});

// ---- Updates (completions, cancels) of one session's files ------------------------------------

/** Creates `n` distinct pending files in session `id`; their ids. */
async function pendingFiles(store: PostgresSessionStore, id: string, n: number): Promise<string[]> {
  const created = await Promise.all(Array.from({ length: n }, (_, i) => createFile(store, id, wheel(1000 + i), generous)));
  return created.map((r) => (r.kind === 'created' ? r.file.id : expect.fail(`create: ${r.kind}`)));
}

/** A completion as the server's makes it: pending → completed in a session files may change in. */
const complete = (store: PostgresSessionStore, fileId: string, blobKey = `files/${fileId}`) =>
  store.updateFile(
    fileId,
    ['pending'],
    {
      status: 'completed',
      blobKey,
      attestations: null,
      coreMetadata: new TextEncoder().encode(`Name: foo\n${blobKey}`),
      requiresPython: null,
    },
    EDITABLE_SESSION_STATES,
  );

/** The retries counted since `before` (the counters of the same stores, in order). */
const retriesSince = (stores: PostgresSessionStore[], before: readonly WriteStats[]) =>
  stores.reduce((sum, s, i) => {
    const [now, then] = [s.writeStats(), before[i]!];
    return sum + now.serializationRetries - then.serializationRetries + now.deadlockRetries - then.deadlockRetries;
  }, 0);

it(
  '64 concurrent completions of distinct files of one session over three nodes all succeed, with next to no retries',
  { timeout: 120_000 },
  async () => {
    const stores = await nodes(3);
    const id = await session(stores[0]!);
    const files = await pendingFiles(stores[0]!, id, 64);
    const before = stores.map((s) => s.writeStats());
    const done = await Promise.all(files.map((f, i) => complete(stores[i % 3]!, f)));
    expect(done.map((f) => f?.status)).toEqual(Array<string>(64).fill('completed'));
    expect((await stores[1]!.listFiles(id)).filter((f) => f.status === 'completed')).toHaveLength(64);
    // Without the queue (the files trigger bumps the session row on every completion) they were
    // retried 2 to 5 times each. With it none, unless a queue lock timed out on a very loaded machine.
    const timeouts = queueTimeouts(stores);
    expect(retriesSince(stores, before)).toBeLessThanOrEqual(4 + 4 * timeouts);
    expect(timeouts).toBeLessThanOrEqual(1);
  },
);

for (const [mode, how] of Object.entries(MODES)) {
  it(`the rules of updates hold under concurrent updates of one session's files, ${how}`, { timeout: 120_000 }, async () => {
    const stores = await nodes(2, { writeQueueTimeoutMillis: 100, queueWrites: mode !== 'unqueued' });
    const id = await session(stores[0]!);
    const files = await pendingFiles(stores[0]!, id, 8);
    const blocker = mode === 'blocked' ? await holdQueue(id) : undefined;
    try {
      const f = (i: number) => files[i]!;
      const on = (i: number) => stores[i % 2]!;
      const later = at(50);
      // All at once, over both nodes:
      const [completions, completeOrCancel, stale, notices, extend, staleSession] = await Promise.all([
        // files 0–3: three completions each, with different bytes: one wins per file.
        Promise.all([0, 1, 2, 3].map((i) => Promise.all([0, 1, 2].map((k) => complete(on(i + k), f(i), `files/${f(i)}/${k}`))))),
        // files 4 and 5: a completion against a cancel (a DELETE racing it): one wins per file.
        Promise.all(
          [4, 5].map((i) =>
            Promise.all([complete(on(i), f(i)), on(i + 1).updateFile(f(i), ['pending'], { status: 'canceled' }, EDITABLE_SESSION_STATES)]),
          ),
        ),
        // file 6: an update expecting a status the file is not in changes nothing…
        on(0).updateFile(f(6), ['processing'], { status: 'completed', blobKey: 'files/stale' }),
        // … while two updates of different columns of it both stay (no lost update).
        on(1).updateFile(f(6), ['pending'], { notices: ['checked'] }),
        on(0).updateFile(f(6), ['pending'], { expiresAt: later }),
        // file 7: a completion expecting a session state the session is not in changes nothing.
        on(1).updateFile(f(7), ['pending'], { status: 'completed', blobKey: 'files/stale' }, ['processing']),
      ]);

      for (const [i, results] of completions.entries()) {
        const winners = results.filter((r) => r !== undefined);
        expect(winners).toHaveLength(1);
        expect((await stores[0]!.getFile(f(i)))?.blobKey).toBe(winners[0]!.blobKey);
      }
      for (const [j, [completed, canceled]] of completeOrCancel.entries()) {
        expect([completed, canceled].filter((r) => r !== undefined)).toHaveLength(1);
        expect((await stores[1]!.getFile(f(4 + j)))?.status).toBe((completed ?? canceled)!.status);
      }
      expect(stale).toBeUndefined();
      expect(staleSession).toBeUndefined();
      expect(notices?.notices).toEqual(['checked']);
      expect(extend?.expiresAt).toEqual(later);
      const six = await stores[0]!.getFile(f(6));
      expect([six?.status, six?.notices, six?.expiresAt, six?.blobKey]).toEqual(['pending', ['checked'], later, null]);
      expect((await stores[0]!.getFile(f(7)))?.status).toBe('pending');

      // A canceled session: no file of it changes any more.
      await stores[0]!.cancelSession(id, ['open'], at(55));
      expect(await complete(stores[1]!, f(7))).toBeUndefined();

      // 12 + 2 × 2 + 3 + 1 updates and the last completion: each waited for the held lock, then ran without it.
      if (mode === 'blocked') expect(queueTimeouts(stores)).toBeGreaterThanOrEqual(21);
      else expect(queueTimeouts(stores)).toBe(0);
    } finally {
      await blocker?.end();
    }
  });
}

it(
  'a cancel of the session in the middle of concurrent completions waits its turn: no deadlock, and no completion after it',
  { timeout: 120_000 },
  async () => {
    const stores = await nodes(4);
    const id = await session(stores[0]!);
    const files = await pendingFiles(stores[0]!, id, 64);
    const completions = Promise.all(files.map((f, i) => complete(stores[i % 3]!, f)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const canceled = await stores[3]!.cancelSession(id, ['open'], at(30));
    const done = await completions;
    // Every file is canceled now; those completed before the cancel were completed, the others found the session canceled.
    expect(canceled?.files.map((f) => f.status)).toEqual(Array<string>(64).fill('canceled'));
    expect((await stores[0]!.listFiles(id, { includeCanceled: true })).map((f) => f.status)).toEqual(Array<string>(64).fill('canceled'));
    const completedBefore = new Set(canceled!.files.filter((f) => f.blobKey !== null).map((f) => f.id));
    expect(new Set(done.flatMap((f) => (f ? [f.id] : [])))).toEqual(completedBefore);
    // Unqueued, the cancel locked the session row and then the files, a completion in flight a file and then the
    // session row: a deadlock in most runs, found after PostgreSQL's deadlock_timeout (1 s).
    expect(stores.reduce((sum, s) => sum + s.writeStats().deadlockRetries, 0)).toBe(0);
  },
);

it('a cancel of the session waits for a holder of its queue in another node', { timeout: 60_000 }, async () => {
  const [store] = await nodes(1);
  const id = await session(store!);
  expect((await waitsForHolder(id, () => store!.cancelSession(id, ['open'], at(1))))?.session.status).toBe('canceled');
});
