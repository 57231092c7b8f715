/**
 * PEP694_DATABASE_URL (issue #17): set to a postgres:// URL, the reference index keeps its
 * sessions in that PostgreSQL database (migrated on start); unset, in SQLite in the data directory
 * as before; anything else stops the start with a message that does not echo the URL.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresSessionStore } from '@pep694/store-postgres';
import { createTestDatabase } from '@pep694/store-postgres/testing';
import { sessionStoreFromEnv } from './session-store.js';
import { startReferenceIndex } from './test-support.js';

const dataDir = mkdtempSync(join(tmpdir(), 'pep694-ref-db-'));
const tokensFile = join(dataDir, 'tokens.json');
const TOKEN = 'database-token-0123456789';
writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token: TOKEN, principal: 'ci', projects: ['*'] }] }));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const createSession = async (url: string, name: string) =>
  fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    body: JSON.stringify({ meta: { 'api-version': '2.0' }, name, version: '1.0' }),
  });

describe('PEP694_DATABASE_URL', () => {
  it('postgres://… keeps the sessions in that PostgreSQL database, and not in SQLite', async () => {
    const db = await createTestDatabase();
    const emptyDir = mkdtempSync(join(dataDir, 'pg-'));
    const { child, url } = await startReferenceIndex(emptyDir, tokensFile, { PEP694_DATABASE_URL: db.url });
    try {
      const res = await createSession(url, 'in-postgres');
      expect(res.status).toBe(201);
      const id = new URL(((await res.json()) as { links: { session: string } }).links.session).pathname.split('/').filter(Boolean).pop()!;
      const store = await PostgresSessionStore.open(db.url);
      try {
        expect(await store.getSession(id)).toMatchObject({ project: 'in-postgres', status: 'open' });
      } finally {
        await store.close();
      }
      expect(existsSync(join(emptyDir, 'pep694.sqlite')), 'no SQLite file').toBe(false);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await db.drop();
    }
  }, 60_000);

  it('unset keeps them in SQLite in the data directory', async () => {
    const sqliteDir = mkdtempSync(join(dataDir, 'sqlite-'));
    const { child, url } = await startReferenceIndex(sqliteDir, tokensFile, { PEP694_DATABASE_URL: '' });
    try {
      expect((await createSession(url, 'in-sqlite')).status).toBe(201);
      expect(existsSync(join(sqliteDir, 'pep694.sqlite'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }, 60_000);

  it('PEP694_DATABASE_QUEUE_WRITES=0 turns the per-session write queue off (a pooler in transaction mode); unset leaves it on', async () => {
    const db = await createTestDatabase();
    try {
      for (const [value, expected] of [
        ['0', false],
        ['1', true],
        ['', true],
      ] as const) {
        const store = await sessionStoreFromEnv({ PEP694_DATABASE_URL: db.url, PEP694_DATABASE_QUEUE_WRITES: value });
        try {
          expect((store as unknown as { connection: { queueWrites: boolean } }).connection.queueWrites, `"${value}"`).toBe(expected);
        } finally {
          await store!.close();
        }
      }
      await expect(sessionStoreFromEnv({ PEP694_DATABASE_URL: db.url, PEP694_DATABASE_QUEUE_WRITES: 'yes' })).rejects.toThrow(
        'PEP694_DATABASE_QUEUE_WRITES must be 0 or 1, not "yes"',
      );
    } finally {
      await db.drop();
    }
  }, 60_000);

  it.each([
    ['mysql://u:secret-password@db/x', 'PEP694_DATABASE_URL must be a postgres:// URL, not mysql://…'],
    ['not a url secret-password', 'PEP694_DATABASE_URL must be a postgres:// URL'],
    // Nothing listens on port 1: the start stops, naming host and database but not the password.
    ['postgres://u:secret-password@127.0.0.1:1/x', 'PEP694_DATABASE_URL: cannot open the PostgreSQL store at 127.0.0.1:1/x'],
  ])('%s stops the start with a message, without the password', (value, message) => {
    const main = new URL('../dist/main.js', import.meta.url).pathname;
    const run = spawnSync(process.execPath, [main], {
      env: { ...process.env, PEP694_PORT: '0', PEP694_DATA: dataDir, PEP694_TOKENS_FILE: tokensFile, PEP694_DATABASE_URL: value },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toContain('secret-password');
  });
});
