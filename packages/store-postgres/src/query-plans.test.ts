/**
 * No statement of the store reads a whole table: sessions and files are kept for the retention (a
 * week by default) and projects, published files and their attestations forever, so a sequential
 * scan on the request path grows with the index's history. The SQLite store has the same test
 * (sqlite-store-states.test.ts): there `session_id IN (SELECT id FROM sessions WHERE status IN …)`
 * in the completion's update listed every session first (17 ms of the event loop per completion
 * with 20 000 sessions kept).
 *
 * Every statement a run through the store's methods sends is explained again with its own
 * parameters, sequential scans off: the tables are nearly empty, where the planner would rightly
 * scan them; with scans off, a sequential scan left in a plan (or an index read from end to end)
 * means no index fits.
 */
import { callEveryMethod } from '@pep694/store-conformance';
import pg from 'pg';
import { afterEach, expect, it, vi } from 'vitest';
import { openTestStore, type TestStore } from './testing/index.js';

let t: TestStore | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await t?.dispose();
  t = undefined;
});

/** The statements (with their parameters) every method of the store sends, each run once or more (callEveryMethod). */
async function everyStatement(): Promise<{ sql: string; params: unknown[] }[]> {
  t = await openTestStore();
  const { store } = t;
  const sent = new Map<string, unknown[]>();
  const real = pg.Client.prototype.query;
  vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: pg.Client, ...args: unknown[]) {
    const [sql, params] = args;
    if (typeof sql === 'string' && /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i.test(sql)) sent.set(sql, (params as unknown[]) ?? []);
    return (real as (...a: unknown[]) => unknown).apply(this, args);
  });

  await callEveryMethod(store);
  vi.restoreAllMocks();
  return [...sent].map(([sql, params]) => ({ sql, params }));
}

/** A node of `EXPLAIN (FORMAT JSON)`. */
interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly 'Index Name'?: string;
  readonly 'Index Cond'?: string;
  readonly Plans?: readonly PlanNode[];
}

/** The nodes of `plan` that read a whole table: a sequential scan, or an index read end to end. */
function wholeTableReads(plan: PlanNode, partialIndexes: ReadonlySet<string>): string[] {
  const own: string[] = [];
  const type = plan['Node Type'];
  if (type === 'Seq Scan') own.push(`Seq Scan on ${plan['Relation Name']}`);
  // With sequential scans off, the planner reads a table through any of its indexes instead,
  // filtering every row: an index scan with no condition on the index, unless the index is partial.
  if (/Index/.test(type) && plan['Index Cond'] === undefined && !partialIndexes.has(plan['Index Name']!)) {
    own.push(`${type} using ${plan['Index Name']} with no condition`);
  }
  return [...own, ...(plan.Plans ?? []).flatMap((p) => wholeTableReads(p, partialIndexes))];
}

it('no statement of the store reads a whole table (EXPLAIN, sequential scans off)', async () => {
  const statements = await everyStatement();
  expect(statements.length).toBeGreaterThan(30);
  const client = new pg.Client({ connectionString: t!.database.url });
  await client.connect();
  const found: string[] = [];
  try {
    // Joins as nested loops too: on tables this small a merge join reads a whole primary key in
    // order, where the same join over a populated table goes row by row through the index.
    await client.query('SET enable_seqscan = off; SET enable_mergejoin = off; SET enable_hashjoin = off');
    const partial = new Set(
      (await client.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE indexdef LIKE '% WHERE %'`)).rows.map(
        (r) => r.indexname,
      ),
    );
    expect(partial.size).toBeGreaterThan(5);
    for (const { sql, params } of statements) {
      // The one listing that is every row by purpose: the names on the index's root page.
      if (/FROM projects WHERE registered ORDER BY name/.test(sql)) continue;
      const [{ 'QUERY PLAN': plans }] = (await client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (FORMAT JSON) ${sql}`, params))
        .rows as [{ 'QUERY PLAN': { Plan: PlanNode }[] }];
      for (const read of wholeTableReads(plans[0]!.Plan, partial)) found.push(`${read} in: ${sql.replace(/\s+/g, ' ')}`);
    }
  } finally {
    await client.end();
  }
  expect(found).toEqual([]);
});
