/**
 * Forgetting the sessions that ended before the retention (the reaper's `forgetEndedSessions`)
 * while clients write. As one SERIALIZABLE transaction, 1 500 such sessions never committed
 * beside two clients creating sessions and files: its reads conflicted with their writes, it lost
 * every time and failed after 60 attempts (7 s), and so at every reaper pass, the tables growing
 * for as long as the index was busy. It deletes only rows no transaction changes any more, now
 * at READ COMMITTED, FORGET_BATCH sessions to a transaction.
 */
import pg from 'pg';
import { afterEach, expect, it, vi } from 'vitest';
import { FORGET_BATCH } from './housekeeping.js';
import { at, newUpload, openSession } from './store.test-support.js';
import { openTestStore, type TestStore } from './testing/index.js';

let t: TestStore | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await t?.dispose();
  t = undefined;
});

it(`forgets ended sessions while clients create sessions and files, ${FORGET_BATCH} to a transaction`, async () => {
  t = await openTestStore();
  const { store } = t;
  const ended = 3 * FORGET_BATCH + 7;
  const client = new pg.Client({ connectionString: t.database.url });
  await client.connect();
  try {
    // Published releases that ended a month before at(0), each with its project and one file.
    await client.query(
      `INSERT INTO sessions (id, project, display_name, version, release_key, status, created_by, created_at, expires_at, ended_at, reserves_name, notices)
       SELECT 'old-' || g, 'old' || g, 'old' || g, '1.0', '1', 'published', 'alice', $2::timestamptz - interval '31 days',
              $2::timestamptz - interval '30 days', $2::timestamptz - interval '30 days', false, '[]'
       FROM generate_series(1, $1) g`,
      [ended, at(0)],
    );
    await client.query(
      `INSERT INTO projects (name, display_name, registered) SELECT 'old' || g, 'old' || g, true FROM generate_series(1, $1) g`,
      [ended],
    );
    await client.query(
      `INSERT INTO files (id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices, identity, created_by, published, blob_key)
       SELECT 'old-f' || g, 'old-' || g, 'old' || g || '-1.0.tar.gz', 10, '{}', 'http-post-bytes', 'completed', $2, $2, '[]',
              'old' || g || '-1.0.tar.gz', 'alice', true, 'files/old-f' || g
       FROM generate_series(1, $1) g`,
      [ended, at(0)],
    );
    await client.query('ANALYZE');

    // Two clients creating a session and a file, again and again, until the forget is done.
    let done = false;
    let written = 0;
    const writer = async (name: string) => {
      for (let i = 0; !done; i++) {
        const id = await openSession(store, `${name}-${i}`, `${name}${i}`);
        expect((await store.createFile(newUpload(id, `${name}${i}-1.0.tar.gz`), { maxFiles: 10 })).kind).toBe('created');
        written++;
      }
    };
    const writers = [writer('a'), writer('b')];
    while (written < 4) await new Promise((resolve) => setTimeout(resolve, 5));
    const transactions = vi.spyOn(
      (store as unknown as { connection: { inReadCommittedTransaction: () => unknown } }).connection,
      'inReadCommittedTransaction',
    );
    let forgotten: number;
    try {
      forgotten = await store.forgetEndedSessions(at(0));
    } finally {
      done = true;
      await Promise.allSettled(writers);
    }
    await Promise.all(writers); // every write succeeded

    expect(forgotten).toBe(ended);
    expect(transactions).toHaveBeenCalledTimes(4);
    const count = async (sql: string) => Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
    expect(await count(`SELECT COUNT(*) AS n FROM sessions WHERE id LIKE 'old-%'`)).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM files WHERE session_id LIKE 'old-%'`)).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM projects WHERE name LIKE 'old%'`)).toBe(ended); // projects stay
    // The clients' sessions and files are all there.
    expect(await count(`SELECT COUNT(*) AS n FROM files WHERE session_id NOT LIKE 'old-%'`)).toBe(written);
  } finally {
    await client.end();
  }
}, 120_000);
