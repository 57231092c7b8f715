/**
 * Races between requests on one session, over real HTTP. Whatever wins, the outcome is one the
 * PEP's tables allow, no request gets a 5xx, and the stored state agrees with the answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE } from '@pep694/core';
import { tally, type TestServer } from '../testing/index.js';
import { api, createFile, createSession, META, postBytes, startServer, uploadFile } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => t.close());

const ROUNDS = 8;
const fileId = (f: { links: Record<string, string> }) => f.links['file-upload-session']!.split('/').pop()!;

describe('races (PEP 694 state tables hold under concurrency)', () => {
  it('publish racing cancel: exactly one wins, and the published namespace agrees', async () => {
    const store = t.server.container.resolve(SESSION_STORE);
    for (let i = 0; i < ROUNDS; i++) {
      const s = await createSession(t.url, 'race-publish-cancel', `1.${i}`);
      await uploadFile(s, `race_publish_cancel-1.${i}.tar.gz`, Buffer.from(`round ${i}`));
      const [pub, del] = await Promise.all([api('POST', s.links.publish!, { body: { meta: META } }), api('DELETE', s.links.session!)]);
      expect(pub.status, JSON.stringify(pub.body)).toBeLessThan(500);
      expect(del.status, JSON.stringify(del.body)).toBeLessThan(500);
      const published = (await store.listPublishedFiles('race-publish-cancel')).some((f) => f.version === `1.${i}`);
      if (pub.status === 201) {
        expect(del.status).toBe(409);
        expect(published).toBe(true);
      } else {
        expect(del.status).toBe(204);
        expect([404, 409]).toContain(pub.status);
        expect(published).toBe(false);
      }
    }
    tally('races run', ROUNDS);
  });
  it('completion racing DELETE: a deleted file never stays completed and its bytes are purged', async () => {
    const blobs = t.server.container.resolve(BLOB_STORE);
    const s = await createSession(t.url, 'race-complete-delete', '1.0');
    for (let i = 0; i < ROUNDS; i++) {
      const name = i % 2 ? 'race_complete_delete-1.0.tar.gz' : 'race_complete_delete-1.0-py3-none-any.whl';
      const bytes = Buffer.from(`bytes of round ${i}`);
      const f = await createFile(s, name, bytes);
      expect(await postBytes(f, bytes)).toBe(204);
      const [done, del] = await Promise.all([api('POST', f.links.complete!, { body: { meta: META } }), api('DELETE', f.links['file-upload-session']!)]);
      expect(done.status, JSON.stringify(done.body)).toBeLessThan(500);
      expect(del.status, JSON.stringify(del.body)).toBe(204);
      const status = (await api('GET', f.links['file-upload-session']!)).body.status;
      expect(status).toBe('canceled');
      expect(await blobs.size(`files/${fileId(f)}`)).toBeUndefined();
      expect(await blobs.size(`staging/${fileId(f)}`)).toBeUndefined();
    }
    tally('races run', ROUNDS);
  });
  it('publish racing a file delete: the file is either published or gone, never both', async () => {
    const store = t.server.container.resolve(SESSION_STORE);
    for (let i = 0; i < ROUNDS; i++) {
      const s = await createSession(t.url, 'race-publish-delete', `2.${i}`);
      const f = await uploadFile(s, `race_publish_delete-2.${i}.tar.gz`, Buffer.from(`round ${i}`));
      const [pub, del] = await Promise.all([api('POST', s.links.publish!, { body: { meta: META } }), api('DELETE', f.links['file-upload-session']!)]);
      expect(pub.status, JSON.stringify(pub.body)).toBe(201);
      expect(del.status, JSON.stringify(del.body)).toBeLessThan(500);
      const published = (await store.listPublishedFiles('race-publish-delete')).some((p) => p.version === `2.${i}`);
      // Deleted first: an empty release was published. Published first: the delete is refused.
      expect(published).toBe(del.status === 409);
      if (!published) expect(del.status).toBe(204);
    }
    tally('races run', ROUNDS);
  });
  it('N concurrent file sessions for one filename: exactly one is created', async () => {
    const s = await createSession(t.url, 'race-same-file', '1.0');
    const body = { meta: META, filename: 'race_same_file-1.0.tar.gz', size: 3, hashes: { sha256: '0'.repeat(64) }, mechanism: 'http-post-bytes' };
    const results = await Promise.all(Array.from({ length: 12 }, () => api('POST', s.links.upload!, { body })));
    expect(results.filter((r) => r.status === 202)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 202)) {
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('file-exists');
    }
    tally('races run');
  });
});
