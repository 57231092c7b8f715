// The SQLite store's group commit (./sqlite/wal-sync.ts): commits do not fsync on the event loop;
// every call of the port resolves only once the WAL holding what it wrote or read is synced, and
// concurrent calls share syncs. The syncs are held by hand here (syncWal option), on a real
// database file; the default syncer (fdatasync of the -wal file) runs in every other store test.
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteSessionStore } from './sqlite/store.js';
import { closeTempStore, newFile, newSession, openTempStore } from './sqlite-test-support.js';
import { settled } from './test-support.js';

/** A syncer the test releases by hand: each call waits until `release()`. */
function heldSyncs() {
  const waiting: (() => void)[] = [];
  let calls = 0;
  return {
    syncWal: () =>
      new Promise<void>((resolve) => {
        calls++;
        waiting.push(resolve);
      }),
    get calls() {
      return calls;
    },
    get pending() {
      return waiting.length;
    },
    /** Lets every sync under way finish. */
    release() {
      for (const r of waiting.splice(0)) r();
    },
  };
}

let dir: string;
let store: SqliteSessionStore;
afterEach(async () => {
  syncs?.release();
  if (store) await closeTempStore(store, dir);
});
let syncs: ReturnType<typeof heldSyncs> | undefined;

function open() {
  syncs = heldSyncs();
  ({ dir, store } = openTempStore('pep694-group-commit-', { syncWal: syncs.syncWal }));
  return syncs;
}

describe('SQLite group commit', () => {
  it('a write resolves only after the WAL sync that follows its commit', async () => {
    const s = open();
    const creating = store.createSession(newSession());
    expect(await settled(creating)).toBe(false);
    expect(s.pending).toBe(1);
    s.release();
    expect((await creating).kind).toBe('created');
    expect(s.calls).toBe(1);
  });

  it('a read of a commit not yet synced waits for the sync; a read with nothing pending does not', async () => {
    const s = open();
    const session = newSession();
    const creating = store.createSession(session);
    await settled(creating);
    const reading = store.getSession(session.id);
    expect(await settled(reading)).toBe(false); // it sees the row, and must not act on it before the sync
    s.release();
    await creating;
    expect(await reading).toMatchObject({ id: session.id });
    // Nothing written since: reads answer without a sync.
    const calls = s.calls;
    expect(await settled(store.getSession(session.id))).toBe(true);
    expect(s.calls).toBe(calls);
  });

  it('concurrent commits share syncs: 20 files created during one sync need one more, not 20', async () => {
    const s = open();
    const session = newSession();
    const first = store.createSession(session);
    await settled(first);
    s.release();
    await first;
    const before = s.calls;
    const creates = Array.from({ length: 20 }, (_, i) =>
      store.createFile(newFile(session.id, `foo-1.0-py3-none-any${i}.whl`), { maxFiles: 100 }),
    );
    // All 20 committed (better-sqlite3 is synchronous); one sync covers them and none resolved before it.
    for (const c of creates) expect(await settled(c)).toBe(false);
    expect(s.calls - before).toBe(1);
    s.release();
    const results = await Promise.all(creates);
    expect(results.every((r) => r.kind === 'created')).toBe(true);
    expect(s.calls - before).toBe(1);
  });

  it('a commit made while a sync runs waits for the next sync, not the running one', async () => {
    const s = open();
    const a = newSession();
    const b = newSession({ version: '2.0', releaseKey: '2' });
    const first = store.createSession(a);
    await settled(first);
    const second = store.createSession(b); // committed while the first sync is still running
    await settled(second);
    expect(s.pending).toBe(1);
    s.release();
    await first;
    expect(await settled(second)).toBe(false); // the first sync began before its commit
    expect(s.pending).toBe(1);
    s.release();
    expect((await second).kind).toBe('created');
    expect(s.calls).toBe(2);
  });

  it('a failing sync fails the call (the caller must not answer as if it were durable)', async () => {
    let fail = true;
    ({ dir, store } = openTempStore('pep694-group-commit-', {
      syncWal: async () => {
        if (fail) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      },
    }));
    await expect(store.createSession(newSession())).rejects.toThrow(/EIO/);
    fail = false;
    expect((await store.createSession(newSession({ version: '3.0', releaseKey: '3' }))).kind).toBe('created');
  });
});
