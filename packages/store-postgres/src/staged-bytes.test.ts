/**
 * The staged-bytes quota's sum (limits.maxStagedBytesPerPrincipal, run in every create of a file
 * upload session) reads only the files a principal has staged. Published files keep their status
 * (`completed`, as the PEP shows them) until the retention forgets their rows, a week by default;
 * while the partial index files_staged_by held them too, the sum read every file the principal had
 * published in that time. Publishing sets `files.published`, which takes them out of the index,
 * and the migration that adds the column sets it for the files already published.
 */
import { newDirectPublish } from '@pep694/store-conformance';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { migrate } from './migrations.js';
import { at, newUpload, openSession, UNDO_FILES_PUBLISHED } from './store.test-support.js';
import type { PostgresSessionStore } from './store.js';
import { openTestStore, type TestStore } from './testing/index.js';
import { STAGED_BYTES_SQL } from './uploads.js';

const QUOTA = { maxFiles: 1000, maxStagedBytes: 10_000 };

let t: TestStore | undefined;
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});

async function query<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: t!.database.url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

let seq = 0;
const session = (store: PostgresSessionStore, project: string) => openSession(store, `s-${++seq}`, project);
const wheel = (sessionId: string, project: string, i: number, size = 100) =>
  newUpload(sessionId, `${project}-1.0-${i + 1}-py3-none-any.whl`, { size });

async function completed(store: PostgresSessionStore, sessionId: string, project: string, i: number, size = 100): Promise<string> {
  const r = await store.createFile(wheel(sessionId, project, i, size), QUOTA);
  if (r.kind !== 'created') throw new Error(`expected created, got ${r.kind}`);
  expect(await store.updateFile(r.file.id, ['pending'], { status: 'completed', blobKey: `files/${r.file.id}` })).toBeDefined();
  return r.file.id;
}

/** The rows of files_staged_by for alice: what the quota's sum reads. */
const indexRows = async () =>
  Number(
    (
      await query<{ n: string }>(
        `SELECT count(*) AS n FROM files WHERE created_by = 'alice' AND NOT published AND status IN ('pending', 'processing', 'completed')`,
      )
    )[0]!.n,
  );

it("publishing takes a session's files out of the quota's index: immediate, deferred and legacy publishes", async () => {
  t = await openTestStore();
  const { store } = t;
  const a = await session(store, 'foo');
  for (let i = 0; i < 20; i++) await completed(store, a, 'foo', i);
  expect(await indexRows()).toBe(20);
  expect((await store.publish(a, ['open'], at(2), { defer: false })).kind).toBe('published');
  expect(await indexRows()).toBe(0);

  const b = await session(store, 'bar');
  await completed(store, b, 'bar', 0, 4000);
  expect((await store.publish(b, ['open'], at(3), { defer: true })).kind).toBe('processing');
  expect(await indexRows()).toBe(1); // still staged while the publish runs
  await store.settlePublish(b, at(4), { ok: true });
  expect(await indexRows()).toBe(0);

  const direct = await store.publishFile(
    newDirectPublish({ sessionId: 's-direct', fileId: 'f-direct', project: 'baz', filename: 'baz-1.0.tar.gz', size: 5000, at: at(5) }),
  );
  expect(direct.kind).toBe('published');
  expect(await indexRows()).toBe(0);

  // The quota still counts what is staged, and only that.
  const c = await session(store, 'qux');
  await completed(store, c, 'qux', 0, 6000);
  expect(await store.createFile(wheel(c, 'qux', 1, 4001), QUOTA)).toEqual({ kind: 'over-quota', quota: 10_000, used: 6000 });
  expect((await store.createFile(wheel(c, 'qux', 1, 4000), QUOTA)).kind).toBe('created');
});

it("the quota's sum can be answered from files_staged_by (EXPLAIN, sequential scans off)", async () => {
  t = await openTestStore();
  const client = new pg.Client({ connectionString: t.database.url });
  await client.connect();
  try {
    // The tables are empty: the planner would rightly scan them; this asks whether the index fits.
    await client.query('SET enable_seqscan = off');
    const plan = (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${STAGED_BYTES_SQL}`, ['alice'])).rows
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(plan).toMatch(/files_staged_by/);
  } finally {
    await client.end();
  }
});

it('the migration that adds files.published sets it for the files already published', async () => {
  t = await openTestStore();
  const { store } = t;
  const a = await session(store, 'foo');
  const done = await completed(store, a, 'foo', 0);
  expect((await store.publish(a, ['open'], at(2), { defer: false })).kind).toBe('published');
  const b = await session(store, 'bar');
  const pending = await completed(store, b, 'bar', 0);
  // Back to the schema before the migration, as an older release left it.
  await query(UNDO_FILES_PUBLISHED);
  const pool = new pg.Pool({ connectionString: t.database.url, max: 1 });
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  const rows = await query<{ id: string; published: boolean }>('SELECT id, published FROM files');
  expect(Object.fromEntries(rows.map((r) => [r.id, r.published]))).toEqual({ [done]: true, [pending]: false });
});
