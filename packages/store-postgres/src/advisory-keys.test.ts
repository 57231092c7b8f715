/**
 * The package's advisory lock calls on a real PostgreSQL: both key forms exclude another session
 * and free on unlock; the timed wait (the write queues') gives up after its timeout, gets a lock
 * released meanwhile, and leaves the connection's lock_timeout as it found it either way.
 */
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { advisoryLockWithin, advisoryUnlock, hashedKey, namespacedKey, tryAdvisoryLock } from './advisory-keys.js';
import { createTestDatabase, type TestDatabase } from './testing/index.js';

let db: TestDatabase | undefined;
const clients: pg.Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
  await db?.drop();
  db = undefined;
});

async function session(): Promise<pg.Client> {
  db ??= await createTestDatabase({ unmigrated: true });
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  clients.push(c);
  return c;
}

it('both key forms: held by one session, refused to another, free again once unlocked', async () => {
  const [a, b] = [await session(), await session()];
  for (const key of [hashedKey('resumable-i8:x'), namespacedKey(0x74757331, 'upload-x')]) {
    expect(await tryAdvisoryLock(a, key)).toBe(true);
    expect(await tryAdvisoryLock(b, key)).toBe(false);
    await advisoryUnlock(a, key);
    expect(await tryAdvisoryLock(b, key)).toBe(true);
    await advisoryUnlock(b, key);
  }
  // One name in the two spaces: two different locks.
  expect(await tryAdvisoryLock(a, hashedKey('same'))).toBe(true);
  expect(await tryAdvisoryLock(b, namespacedKey(1, 'same'))).toBe(true);
});

it('a timed wait gives up after its timeout, gets a lock let go meanwhile, and leaves lock_timeout as it was', async () => {
  const [holder, waiter] = [await session(), await session()];
  const key = hashedKey('pep694-write-queue:session:s-1');
  const lockTimeout = async () => (await waiter.query<{ lock_timeout: string }>('SHOW lock_timeout')).rows[0]!.lock_timeout;
  const before = await lockTimeout();
  expect(await tryAdvisoryLock(holder, key)).toBe(true);

  const t0 = Date.now();
  expect(await advisoryLockWithin(waiter, key, 150)).toBe(false);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  expect(await lockTimeout()).toBe(before);

  const waiting = advisoryLockWithin(waiter, key, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await advisoryUnlock(holder, key);
  expect(await waiting).toBe(true);
  expect(await lockTimeout()).toBe(before);
  expect(await tryAdvisoryLock(holder, key)).toBe(false);
});

it('a timed wait refuses a key that is not an integer (it is written into the statement)', async () => {
  await expect(advisoryLockWithin(await session(), { bigint: '1; DROP TABLE x' }, 10)).rejects.toThrow('not an advisory lock key');
});
