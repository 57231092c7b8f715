/**
 * Crash consistency of publishing (issue: SIGKILL while a publish transaction is in flight):
 * the reference index runs as a real child process, is killed with SIGKILL at seeded random
 * moments around a publish, restarted on the same data, and each release must be either fully
 * published or not at all, with every published file's bytes intact.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsBlobStore, SqliteSessionStore } from '@pep694/server';
import { tally } from '@pep694/server/testing';
import { startReferenceIndex } from './test-support.js';

const TOKEN = 'crash-test-token-0123456789';
const META = { 'api-version': '2.0' };
const dataDir = mkdtempSync(join(tmpdir(), 'pep694-crash-'));
const tokensFile = join(dataDir, 'tokens.json');
writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token: TOKEN, principal: 'ci', projects: ['*'] }] }));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function call(method: string, url: string, body?: unknown, contentType = 'application/vnd.pypi.upload.v2+json') {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    ...(body !== undefined ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A small deterministic PRNG (mulberry32), so a failing kill point can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const FIXTURES = new URL('../../../../shared/fixtures/dist/', import.meta.url);
const RELEASE = ['demo_pkg-1.0.0-py3-none-any.whl', 'demo_pkg-1.0.0.tar.gz'].map((filename) => {
  const bytes = readFileSync(new URL(filename, FIXTURES));
  return { filename, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
});

describe('crash consistency: SIGKILL during publish', () => {
  it('every release is either fully published or not at all, and published bytes are intact', async () => {
    const seed = Number(process.env.PEP694_CRASH_SEED ?? 694);
    const random = rng(seed);
    const rounds = 12;
    let fully = 0;
    for (let round = 0; round < rounds; round++) {
      // A fresh data directory per kill point: the same real release (the fixtures) each time.
      const dir = join(dataDir, `round-${round}`);
      let server = await startReferenceIndex(dir, tokensFile);
      const created = await call('POST', server.url, { meta: META, name: 'demo-pkg', version: '1.0.0' });
      expect(created.status).toBe(201);
      for (const { filename, bytes, sha256 } of RELEASE) {
        const f = await call('POST', created.body.links.upload, { meta: META, filename, size: bytes.length, hashes: { sha256 }, mechanism: 'http-post-bytes' });
        expect(f.status).toBe(202);
        expect((await call('POST', f.body.mechanism.file_url, new Uint8Array(bytes), 'application/octet-stream')).status).toBeLessThan(300);
        expect((await call('POST', f.body.links.complete, { meta: META })).status).toBe(201);
      }
      // Fire the publish and kill the server after a random delay (0–8 ms): before, during or after.
      const publish = call('POST', created.body.links.publish, { meta: META }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.floor(random() * 8)));
      server.child.kill('SIGKILL');
      await new Promise((r) => server.child.once('exit', r));
      await publish;
      // Restart on the same data, as an operator would, and stop cleanly.
      server = await startReferenceIndex(dir, tokensFile);
      const status = await call('GET', created.body.links.session.replace(/^http:\/\/[^/]+/, new URL(server.url).origin));
      expect(['open', 'published'], `round ${round} (seed ${seed})`).toContain(status.body.status);
      server.child.kill('SIGTERM');
      await new Promise((r) => server.child.once('exit', r));

      const store = new SqliteSessionStore(join(dir, 'pep694.sqlite'));
      const blobs = new FsBlobStore(dir);
      const published = await store.listPublishedFiles('demo-pkg');
      expect([0, RELEASE.length], `round ${round} (seed ${seed})`).toContain(published.length);
      expect(published.length > 0, 'the status agrees with the published files').toBe(status.body.status === 'published');
      if (published.length > 0) fully += 1;
      for (const p of published) {
        const chunks: Buffer[] = [];
        for await (const c of await blobs.read(p.blobKey)) chunks.push(c as Buffer);
        expect(createHash('sha256').update(Buffer.concat(chunks)).digest('hex')).toBe(RELEASE.find((r) => r.filename === p.filename)!.sha256);
      }
      await store.close();
      tally('kill points survived');
    }
    console.log(`crash test (seed ${seed}): ${fully} of ${rounds} releases published, ${rounds - fully} not published`);
    // At least one round must reach the commit, or the test never probed the window.
    expect(fully).toBeGreaterThan(0);
  }, 180_000);
});
