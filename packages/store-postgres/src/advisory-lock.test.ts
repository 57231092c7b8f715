/**
 * PostgresAdvisoryLocks on a real PostgreSQL: one holder per key across processes (two instances
 * stand for two nodes, each with its own pool), and within one; released locks are free again; a
 * holder whose process dies (its connections cut) loses its locks, so a node SIGKILLed mid-append
 * does not block the upload.
 */
import { afterEach, expect, it } from 'vitest';
import { PostgresAdvisoryLocks, advisoryKey } from './advisory-lock.js';
import { createTestDatabase, type TestDatabase } from './testing/index.js';

let db: TestDatabase | undefined;
const opened: PostgresAdvisoryLocks[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close().catch(() => {})));
  await db?.drop();
  db = undefined;
});

async function locks(): Promise<PostgresAdvisoryLocks> {
  db ??= await createTestDatabase();
  const l = new PostgresAdvisoryLocks({ connectionString: db.url });
  opened.push(l);
  return l;
}

it('keys hash to signed 64-bit integers, one per name', () => {
  expect(advisoryKey('resumable-i8:abc')).toBe(advisoryKey('resumable-i8:abc'));
  expect(advisoryKey('resumable-i8:abc')).not.toBe(advisoryKey('resumable-i6:abc'));
  const n = BigInt(advisoryKey('x'));
  expect(n >= -(2n ** 63n) && n < 2n ** 63n).toBe(true);
});

it('one holder per key: across two nodes and within one; a released key can be taken again', async () => {
  const nodeA = await locks();
  const nodeB = await locks();
  const release = await nodeA.tryLock('resumable-i8:file1');
  expect(release).toBeTypeOf('function');
  expect(await nodeB.tryLock('resumable-i8:file1')).toBeUndefined();
  // Same process: not re-entrant (another connection of the pool).
  expect(await nodeA.tryLock('resumable-i8:file1')).toBeUndefined();
  // Another key is free.
  const other = await nodeB.tryLock('resumable-i8:file2');
  expect(other).toBeTypeOf('function');
  await release!();
  await release!(); // twice is harmless
  const again = await nodeB.tryLock('resumable-i8:file1');
  expect(again).toBeTypeOf('function');
  await again!();
  await other!();
});

it('of 20 concurrent takes of one key over two nodes, exactly one wins', async () => {
  const nodes = [await locks(), await locks()];
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => nodes[i % 2]!.tryLock('race')));
  expect(results.filter((r) => r !== undefined)).toHaveLength(1);
  await results.find((r) => r !== undefined)!();
});

it('a node whose connections die loses its locks', async () => {
  const dying = await locks();
  const survivor = await locks();
  const held = await dying.tryLock('k');
  expect(held).toBeTypeOf('function');
  expect(await survivor.tryLock('k')).toBeUndefined();
  // What a SIGKILL does to the node's sessions: PostgreSQL ends them and drops their locks.
  const { Client } = (await import('pg')).default;
  const admin = new Client({ connectionString: db!.url });
  await admin.connect();
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()");
  await admin.end();
  let taken: (() => Promise<void>) | undefined;
  for (let i = 0; i < 50 && !taken; i++) {
    taken = await survivor.tryLock('k');
    if (!taken) await new Promise((r) => setTimeout(r, 20));
  }
  expect(taken).toBeTypeOf('function');
  await taken!();
  // The dead holder's release fails quietly (its connection is dropped, not returned).
  await held!();
});
