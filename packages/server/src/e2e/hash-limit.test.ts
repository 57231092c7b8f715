/**
 * Issue #21 low finding (b): declaring all 14 hash algorithms divided upload throughput by five,
 * since every declared digest is computed over every byte. PEP 694 "Create a File Upload
 * Session", `hashes`: "all hashes provided MUST be valid for the file", so the host cannot verify
 * only some of them and accept the rest unchecked: it refuses more than `limits.maxHashes` (3 by
 * default) when the file upload session is created, before any byte is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { HASH_NAMES, nodeHashName } from '@pep694/core';
import { tally, type TestServer } from '../testing/index.js';
import { api, createSession, META, postBytes, startServer } from './helpers.js';

const bytes = Buffer.from('hash limit');
const digest = (name: (typeof HASH_NAMES)[number]) => createHash(nodeHashName(name)).update(bytes).digest('hex');
const declare = (names: readonly (typeof HASH_NAMES)[number][]) => Object.fromEntries(names.map((n) => [n, digest(n)]));

describe('PEP 694 Create a File Upload Session: a bounded number of hashes (issue #21)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer();
  });
  afterAll(() => t.close());

  const create = async (version: string, hashes: Record<string, string>) => {
    // One project per session: a first release reserves its name for its own version.
    const project = `hash-limit-${version.replaceAll('.', '-')}`;
    const session = await createSession(t.url, project, version);
    const filename = `${project.replaceAll('-', '_')}-${version}.tar.gz`;
    return api('POST', session.links.upload!, { body: { meta: META, filename, size: bytes.length, hashes, mechanism: 'http-post-bytes' } });
  };

  it('refuses every algorithm at once with 400 invalid-hashes naming the limit; nothing is created', async () => {
    const res = await create('1.0.0', declare(HASH_NAMES));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid-hashes');
    expect(res.body.detail).toMatch(/names 14 algorithms; this index verifies at most 3 per file/);
    expect(res.body.errors).toEqual([{ source: '/hashes', message: res.body.detail }]);
    expect(res.headers.get('location')).toBeNull();
    const four = await create('1.0.1', declare(['sha256', 'sha512', 'blake2b', 'sha3_256']));
    expect(four.status).toBe(400);
    tally('hostile cases', 2);
  });

  it('accepts three, and verifies all three', async () => {
    const res = await create('1.0.2', declare(['sha256', 'sha512', 'blake2b']));
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(await postBytes(res.body, bytes)).toBeLessThan(300);
    const done = await api('POST', res.body.links.complete, { body: { meta: META } });
    expect(done.status).toBe(201);

    // A wrong third digest is still caught: every accepted hash is checked.
    const wrong = await create('1.0.3', { ...declare(['sha256', 'sha512']), blake2b: '0'.repeat(128) });
    expect(wrong.status).toBe(202);
    expect(await postBytes(wrong.body, bytes)).toBeLessThan(300);
    const refused = await api('POST', wrong.body.links.complete, { body: { meta: META } });
    expect(refused.status).toBe(422);
    expect(refused.body.errors.map((e: { source: string }) => e.source)).toEqual(['/hashes/blake2b']);
  });

  it('the limit is configurable (limits.maxHashes)', async () => {
    const one = await startServer({ config: { limits: { maxHashes: 1 } } });
    try {
      const session = await createSession(one.url, 'hash-limit', '2.0.0');
      const body = { meta: META, filename: 'hash_limit-2.0.0.tar.gz', size: bytes.length, mechanism: 'http-post-bytes' };
      const two = await api('POST', session.links.upload!, { body: { ...body, hashes: declare(['sha256', 'md5']) } });
      expect(two.status).toBe(400);
      expect(two.body.detail).toMatch(/at most 1 per file/);
      expect((await api('POST', session.links.upload!, { body: { ...body, hashes: declare(['sha256']) } })).status).toBe(202);
    } finally {
      await one.close();
    }
  });
});
