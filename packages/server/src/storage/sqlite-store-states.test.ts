/**
 * One source for the PEP 694 state sets (issue #14): every state list of the SQLite store, in its
 * schema and in its queries, equals a set named in `@pep694/core` (packages/core/src/state/), in
 * the set's order. The schema's lists are history (shipped migrations are never edited), so this
 * is what keeps them and core together; the order matters because SQLite uses a partial index
 * only for a query that repeats the index's WHERE term as written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  EDITABLE_SESSION_STATES,
  EXPIRING_FILE_STATES,
  FILE_STATES_HOLDING_BYTES,
  FILE_UPLOAD_STATES,
  LIVE_SESSION_STATES,
  PUBLISHING_SESSION_STATES,
  publishingSessionMachine,
  LIVE_FILE_STATES,
  TERMINAL_SESSION_STATES,
} from '@pep694/core';
import { callEveryMethod } from '@pep694/store-conformance';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as stateLists from './sqlite/state-lists.js';
import { SqliteSessionStore } from './sqlite/store.js';
import { closeTempStore, openTempStore } from './sqlite-test-support.js';

let dir: string;
let store: SqliteSessionStore;
beforeEach(() => {
  ({ dir, store } = openTempStore('pep694-states-'));
});
afterEach(() => closeTempStore(store, dir));

const connection = () =>
  (store as unknown as { connection: { db: Database.Database; prepared(sql: string): Database.Statement } }).connection;

/** A set as core names it: the name a failure reports, and the states. */
const named = (name: string, states: readonly string[]) => ({ name, states });

/** The states a list of SQL string literals names: `('a', 'b')` -> ['a', 'b']. */
const statesOf = (list: string) => [...list.matchAll(/'([^']*)'/g)].map((m) => m[1]!);

describe('the schema (sqlite_master of a fresh database)', () => {
  /** Every object whose SQL holds a state condition, and the set that condition must cover. */
  const EXPECTED: Record<string, { name: string; states: readonly string[] }> = {
    'table sessions': named('PUBLISHING_SESSION_STATES', PUBLISHING_SESSION_STATES),
    'table files': named('FILE_UPLOAD_STATES', FILE_UPLOAD_STATES),
    'index sessions_live_release': named('LIVE_SESSION_STATES', LIVE_SESSION_STATES),
    'index sessions_live_creator': named('LIVE_SESSION_STATES', LIVE_SESSION_STATES),
    'index sessions_expiry': named("publishingSessionMachine.sourcesOf('cancel')", publishingSessionMachine.sourcesOf('cancel')),
    'index files_live_name': named('LIVE_FILE_STATES', LIVE_FILE_STATES),
    'index files_live_identity': named('LIVE_FILE_STATES', LIVE_FILE_STATES),
    'index files_staged_by': named('FILE_STATES_HOLDING_BYTES', FILE_STATES_HOLDING_BYTES),
    'index files_expiry': named('EXPIRING_FILE_STATES', EXPIRING_FILE_STATES),
    // The state a crash can leave a session or file in, that the recovery resumes.
    'index files_processing': named("'processing'", ['processing']),
    'index sessions_processing': named("'processing'", ['processing']),
  };
  /** All states of the table's machine, for `status <> 'x'` (every state but x). */
  const ALL: Record<string, readonly string[]> = { sessions: PUBLISHING_SESSION_STATES, files: FILE_UPLOAD_STATES };

  function stateConditions(): Record<string, string[][]> {
    const rows = connection().db.prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL`).all() as {
      type: string;
      name: string;
      tbl_name: string;
      sql: string;
    }[];
    const found: Record<string, string[][]> = {};
    for (const row of rows) {
      const covered: string[][] = [];
      for (const m of row.sql.matchAll(/\bstatus\s+IN\s*(\([^)]*\))/gi)) covered.push(statesOf(m[1]!));
      for (const m of row.sql.matchAll(/\bstatus\s*=\s*'([^']*)'/gi)) covered.push([m[1]!]);
      for (const m of row.sql.matchAll(/\bstatus\s*(?:<>|!=)\s*'([^']*)'/gi)) {
        const universe = ALL[row.tbl_name];
        if (!universe) throw new Error(`${row.type} ${row.name}: a state condition on a table without states`);
        covered.push(universe.filter((s) => s !== m[1]));
      }
      if (covered.length > 0) found[`${row.type} ${row.name}`] = covered;
    }
    return found;
  }

  it('names the core set of every CHECK constraint and partial index over a status', () => {
    expect(Object.keys(stateConditions()).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [object, set] of Object.entries(EXPECTED)) {
    it(`${object} covers exactly ${set.name}, in its order`, () => {
      const conditions = stateConditions()[object] ?? [];
      expect(conditions.length).toBeGreaterThan(0);
      for (const states of conditions) expect(states, `${object} must equal ${set.name}`).toEqual(set.states);
    });
  }
});

describe('the queries', () => {
  /** Each list of ./sqlite/state-lists.ts, and the core set it must equal. */
  const LISTS: Record<keyof typeof stateLists, { name: string; states: readonly string[] }> = {
    LIVE_SESSIONS_SQL: named('LIVE_SESSION_STATES', LIVE_SESSION_STATES),
    EDITABLE_SESSIONS_SQL: named('EDITABLE_SESSION_STATES', EDITABLE_SESSION_STATES),
    EXPIRING_SESSIONS_SQL: named("publishingSessionMachine.sourcesOf('cancel')", publishingSessionMachine.sourcesOf('cancel')),
    TERMINAL_SESSIONS_SQL: named('TERMINAL_SESSION_STATES', TERMINAL_SESSION_STATES),
    FILES_HOLDING_BYTES_SQL: named('FILE_STATES_HOLDING_BYTES', FILE_STATES_HOLDING_BYTES),
  };

  for (const [list, set] of Object.entries(LISTS)) {
    it(`${list} is ${set.name}`, () => {
      expect(statesOf(stateLists[list as keyof typeof stateLists])).toEqual(set.states);
    });
  }

  /** Runs every method of the store once or more (callEveryMethod), and returns the SQL of every statement it prepared. */
  async function everyStatement(): Promise<string[]> {
    const statements = new Set<string>();
    const conn = connection();
    const real = conn.prepared.bind(conn);
    vi.spyOn(conn, 'prepared').mockImplementation((sql: string) => {
      statements.add(sql);
      return real(sql);
    });
    await callEveryMethod(store);
    vi.restoreAllMocks();
    return [...statements];
  }

  it('spell no list of states: every literal list in the SQL the store prepares is one of ./sqlite/state-lists.ts', async () => {
    const allowed = new Set<string>(Object.values(stateLists));
    const used = new Set<string>();
    const statements = await everyStatement();
    for (const sql of statements) {
      for (const m of sql.matchAll(/\bIN\s*(\(\s*'[^)]*\))/gi)) {
        expect(allowed.has(m[1]!), `a list of its own in: ${sql}`).toBe(true);
        used.add(m[1]!);
      }
    }
    expect([...used].sort(), 'every list of ./sqlite/state-lists.ts is used by some query run here').toEqual([...allowed].sort());
  });

  it('keep matching the partial indexes over a status (EXPLAIN QUERY PLAN)', async () => {
    const db = connection().db;
    const used = new Set<string>();
    for (const sql of await everyStatement()) {
      const names = [...new Set([...sql.matchAll(/:(\w+)/g)].map((m) => m[1]!))];
      const params = names.length > 0 ? [Object.fromEntries(names.map((n) => [n, null]))] : Array.from(sql.matchAll(/\?/g), () => null);
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[];
      for (const row of plan) for (const m of row.detail.matchAll(/USING (?:COVERING )?INDEX (\w+)/g)) used.add(m[1]!);
    }
    for (const index of ['sessions_live_release', 'sessions_live_creator', 'sessions_expiry', 'files_staged_by', 'files_live_name']) {
      expect(used, `some query of the store uses ${index}`).toContain(index);
    }
  });

  it('read no table whole (EXPLAIN QUERY PLAN): every table the store keeps grows with the index', async () => {
    const db = connection().db;
    const partial = new Set(
      db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'`).pluck().all() as string[],
    );
    // The one listing that is every row by purpose: the names on the index's root page.
    const wholeByPurpose = /^SELECT name AS project, display_name AS displayName FROM projects WHERE registered = 1/;
    const scans: string[] = [];
    for (const sql of await everyStatement()) {
      const names = [...new Set([...sql.matchAll(/:(\w+)/g)].map((m) => m[1]!))];
      const params = names.length > 0 ? [Object.fromEntries(names.map((n) => [n, null]))] : Array.from(sql.matchAll(/\?/g), () => null);
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[];
      for (const { detail } of plan) {
        const scan = /^SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?/.exec(detail);
        // A table-valued function (json_each) reads the list the statement was given, not a table.
        const given = / VIRTUAL TABLE /.test(detail);
        if (!scan || scan[1] === 'CONSTANT' || given || (scan[2] !== undefined && partial.has(scan[2])) || wholeByPurpose.test(sql))
          continue;
        scans.push(`${detail} in: ${sql.replace(/\s+/g, ' ')}`);
      }
    }
    // Foreign keys count: deleting a session or a file looks for the rows that refer to it.
    expect(scans).toEqual([]);
  });

  it("the store's sources spell no list of states (the shipped migrations excepted)", () => {
    const state = `'(?:${[...new Set<string>([...PUBLISHING_SESSION_STATES, ...FILE_UPLOAD_STATES])].join('|')})'`;
    const list = new RegExp(`${state}\\s*,\\s*${state}`);
    const chain = new RegExp(`status\\s*[!=]==?\\s*${state}\\s*(?:&&|\\|\\|)[^;]*status\\s*[!=]==?\\s*${state}`);
    const sources = fileURLToPath(new URL('./sqlite/', import.meta.url));
    const files = fs.readdirSync(sources).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts') && n !== 'migrations.ts');
    expect(files.length).toBeGreaterThan(5);
    for (const name of files) {
      fs.readFileSync(path.join(sources, name), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          expect(list.test(line) || chain.test(line), `${name}:${i + 1} spells states: ${line.trim()}`).toBe(false);
        });
    }
  });
});
