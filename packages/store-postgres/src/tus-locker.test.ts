/**
 * PostgresTusLocker (issue #17 "tus across nodes"): two lockers on one real database stand for two
 * nodes. One holder per upload across them; a node wanting a held upload asks the holder to let go
 * (NOTIFY) and gets it once it did; a holder that does not let go makes the other wait until its
 * timeout; a node whose connection dies asks its holders to let go, and the locks are free again.
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './testing/index.js';
import { PostgresTusLocker } from './tus-locker.js';

let db: TestDatabase;
const lockers: PostgresTusLocker[] = [];
const node = (opts: { acquireTimeout?: number } = {}) => {
  const l = new PostgresTusLocker({ connectionString: db.url, pollInterval: 10, ...opts });
  lockers.push(l);
  return l;
};
const never = () => new AbortController().signal;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeEach(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await Promise.all(lockers.splice(0).map((l) => l.close()));
  await db.drop();
});

describe('PostgresTusLocker', () => {
  it('hands an upload over between nodes: the holder is asked to let go, and the other node gets it only after', async () => {
    const a = node();
    const b = node();
    const events: string[] = [];
    const lockA = a.newLock('upload-1');
    await lockA.lock(never(), async () => {
      events.push('A asked to release');
      await sleep(50);
      events.push('A unlocks');
      await lockA.unlock();
    });
    expect(a.holds('upload-1')).toBe(true);
    await b.newLock('upload-1').lock(never(), () => {});
    events.push('B locked');
    expect(events).toEqual(['A asked to release', 'A unlocks', 'B locked']);
    expect(b.holds('upload-1')).toBe(true);
    expect(a.holds('upload-1')).toBe(false);
  });

  it('another upload is not held up', async () => {
    const a = node();
    const b = node({ acquireTimeout: 2000 });
    await a.newLock('upload-1').lock(never(), () => {});
    await b.newLock('upload-2').lock(never(), () => {});
    expect(b.holds('upload-2')).toBe(true);
  });

  it('a holder that does not let go keeps the upload: the other node fails at its timeout (as MemoryLocker)', async () => {
    const a = node();
    const b = node({ acquireTimeout: 400 });
    let asked = 0;
    await a.newLock('upload-1').lock(never(), () => {
      asked++;
    });
    const t0 = Date.now();
    await expect(b.newLock('upload-1').lock(never(), () => {})).rejects.toMatchObject({ status_code: 500, message: /lock/ });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    expect(asked).toBeGreaterThanOrEqual(1);
    expect(a.holds('upload-1')).toBe(true);
  });

  it('an aborted request stops waiting', async () => {
    const a = node();
    const b = node();
    await a.newLock('upload-1').lock(never(), () => {});
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    await expect(b.newLock('upload-1').lock(stop.signal, () => {})).rejects.toMatchObject({ status_code: 500 });
  });

  it('never two holders at once: 24 requests over two nodes, each letting go when asked', async () => {
    const nodes = [node(), node()];
    let holding = 0;
    let most = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const lock = nodes[i % 2]!.newLock('upload-1');
        let released = false;
        const release = async () => {
          if (released) return;
          released = true;
          holding--;
          await lock.unlock();
        };
        await lock.lock(never(), release);
        holding++;
        most = Math.max(most, holding);
        await sleep(5);
        await release();
        done++;
      }),
    );
    expect(done).toBe(24);
    expect(most).toBe(1);
  });

  it('a node whose connection dies asks its holders to let go, and the upload is free for the others', async () => {
    const a = node();
    const b = node({ acquireTimeout: 5000 });
    let asked = false;
    const lockA = a.newLock('upload-1');
    await lockA.lock(never(), () => {
      asked = true;
    });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      // Every backend holding a tus lock: node A's connection.
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1`, [0x74757331]);
    } finally {
      await admin.end();
    }
    await b.newLock('upload-1').lock(never(), () => {});
    expect(asked).toBe(true);
    expect(b.holds('upload-1')).toBe(true);
    await lockA.unlock(); // lost with its connection: nothing to release, no error
    // Node A takes locks again on a new connection.
    await a.newLock('upload-2').lock(never(), () => {});
    expect(a.holds('upload-2')).toBe(true);
  });
});
