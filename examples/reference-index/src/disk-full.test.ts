/**
 * Disk full: the data directory (SQLite file, blobs, temp files, the tus and resumable directories) on an 8 MiB
 * tmpfs. Every mechanism's upload that runs out of space gets 507 `insufficient-storage`
 * problem+json, nothing partial is kept as received, published files stay intact, SQLite keeps
 * working (and is not corrupted by writes that failed), and once space is freed the same uploads
 * succeed.
 *
 * Needs root (mount -t tmpfs); elsewhere the suite is skipped with a message saying so.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readdirSync, rmSync, rmdirSync, writeSync, closeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE } from '@pep694/core';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import multipart from '@pep694/mechanism-multipart';
import tus from '@pep694/mechanism-tus';
import resumable from '@pep694/mechanism-resumable';
import { api, META, startTestServer, tally, TEST_TOKENS, type TestServer } from '@pep694/server/testing';
import { SqliteSessionStore } from '@pep694/server';
import { createHash } from 'node:crypto';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

let mountDir: string | undefined;
let skipReason: string | undefined;
try {
  const dir = mkdtempSync(join(tmpdir(), 'pep694-diskfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir], { stdio: 'pipe' });
    mountDir = dir;
  } catch (err) {
    rmdirSync(dir);
    skipReason = `cannot mount a tmpfs (needs root): ${(err as Error).message.split('\n')[0]}`;
  }
} catch (err) {
  skipReason = `cannot prepare the mount point: ${(err as Error).message}`;
}
if (skipReason) console.warn(`disk-full suite skipped: ${skipReason}`);

let t: TestServer;
const ALICE = { authorization: `Bearer ${TEST_TOKENS.alice}` };

/** One way to send a file's bytes, per mechanism. Returns the HTTP answer of the transfer. */
type Send = (file: any, bytes: Buffer) => Promise<{ status: number; type: string | null; body: any }>;
async function answer(res: Response) {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, type: res.headers.get('content-type'), body };
}
const MECHANISMS: { id: string; send: Send }[] = [
  {
    id: 'http-post-bytes',
    send: async (f, bytes) =>
      answer(
        await fetch(f.mechanism.file_url, {
          method: 'POST',
          headers: { ...ALICE, 'content-type': 'application/octet-stream' },
          body: bytes,
        }),
      ),
  },
  {
    id: 'vnd-test-multipart',
    send: async (f, bytes) => {
      const form = new FormData();
      form.append('content', new Blob([bytes]), 'file');
      return answer(await fetch(f.mechanism.file_url, { method: 'POST', headers: ALICE, body: form }));
    },
  },
  {
    id: 'vnd-test-tus',
    send: async (f, bytes) =>
      answer(
        await fetch(f.mechanism.upload_url, {
          method: 'PATCH',
          headers: { ...ALICE, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
          body: bytes,
        }),
      ),
  },
  {
    // The IETF draft: upload creation with the whole file (a new creation replaces an earlier one).
    id: 'vnd-test-resumable-i8',
    send: async (f, bytes) =>
      answer(
        await fetch(f.mechanism.creation_url, {
          method: 'POST',
          headers: { ...ALICE, 'upload-draft-interop-version': '8', 'upload-complete': '?1' },
          body: bytes,
        }),
      ),
  },
];

/** Fills the tmpfs up to the last byte with a file; returns its path. */
function fillDisk(): string {
  const path = join(mountDir!, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0xff);
  try {
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        // Top up with smaller writes, so not even a few KiB are left.
        for (let n = 4096; n >= 1; n = Math.floor(n / 2)) {
          try {
            for (;;) writeSync(fd, chunk.subarray(0, n));
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          }
        }
        return path;
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function createSession(name: string, version: string) {
  const res = await api('POST', t.url, { body: { meta: META, name, version } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}
async function createFile(session: any, filename: string, bytes: Buffer, mechanism: string) {
  const res = await api('POST', session.links.upload, {
    body: { meta: META, filename, size: bytes.length, hashes: { sha256: sha256(bytes) }, mechanism },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}
function expectInsufficientStorage(r: { status: number; type: string | null; body: any }, what: string) {
  expect(r.status, `${what}: ${JSON.stringify(r.body).slice(0, 400)}`).toBe(507);
  expect(r.type, what).toBe('application/problem+json');
  expect(r.body.code, what).toBe('insufficient-storage');
  expect(r.body.meta, what).toEqual(META);
}
/** Temp and staging files left on the tmpfs (none may stay after a refused upload). */
function leftovers(): string[] {
  const out: string[] = [];
  for (const dir of ['tmp', 'blobs/staging']) {
    const path = join(mountDir!, dir);
    if (existsSync(path)) out.push(...readdirSync(path).map((n) => `${dir}/${n}`));
  }
  return out;
}

describe.skipIf(skipReason !== undefined)('disk full on the data directory (tmpfs of 8 MiB)', () => {
  let published: { name: string; bytes: Buffer };
  beforeAll(async () => {
    t = await startTestServer({
      config: { dataDir: mountDir!, limits: { deferVerificationAbove: 64 * MiB } },
      mechanisms: [
        { plugin: httpPostBytes, options: {} },
        { plugin: multipart, options: { operator: 'test' } },
        { plugin: tus, options: { operator: 'test', directory: join(mountDir!, 'tus') } },
        { plugin: resumable, options: { operator: 'test', directory: join(mountDir!, 'resumable'), interopVersions: [8] } },
      ],
    });
    // A release published before the disk fills, to check afterwards.
    const s = await createSession('disk-full-before', '1.0');
    const bytes = randomBytes(256 * 1024);
    const f = await createFile(s, 'disk_full_before-1.0.tar.gz', bytes, 'http-post-bytes');
    expect((await MECHANISMS[0]!.send(f, bytes)).status).toBeLessThan(300);
    expect((await api('POST', f.links.complete, { body: { meta: META } })).status).toBe(201);
    expect((await api('POST', s.links.publish, { body: { meta: META } })).status).toBe(201);
    published = { name: 'disk_full_before-1.0.tar.gz', bytes };
  });
  afterAll(async () => {
    await t?.close();
    if (mountDir) {
      execFileSync('umount', [mountDir]);
      rmSync(mountDir, { recursive: true, force: true });
    }
  });

  async function publishedIntact() {
    const store = t.server.container.resolve(SESSION_STORE);
    const blobs = t.server.container.resolve(BLOB_STORE);
    const file = await store.getPublishedFile('disk-full-before', published.name);
    expect(file).toBeDefined();
    const chunks: Buffer[] = [];
    for await (const c of await blobs.read(file!.blobKey)) chunks.push(c as Buffer);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(published.bytes));
  }
  function integrity() {
    expect((t.server.container.resolve(SESSION_STORE) as SqliteSessionStore).integrityCheck()).toBe('ok');
  }

  it.each(MECHANISMS)(
    '$id: a file larger than the free space gets 507 problem+json, nothing partial is kept, and the file stays pending',
    async ({ id, send }) => {
      const s = await createSession(`disk-full-big-${id}`, '1.0');
      const bytes = randomBytes(10 * MiB); // more than the whole tmpfs
      const f = await createFile(s, `disk_full_big_${id.replace(/-/g, '_')}-1.0.tar.gz`, bytes, id);
      expectInsufficientStorage(await send(f, bytes), id);
      const status = await api('GET', f.links['file-upload-session']);
      expect(status.status).toBe(200);
      expect(status.body.status).toBe('pending');
      // The resumable mechanisms keep what was written before the disk filled (the client resumes from it).
      if (id !== 'vnd-test-tus' && id !== 'vnd-test-resumable-i8') expect(status.body.meta?._pep694?.['bytes-received'] ?? 0).toBe(0);
      // Completing now does not take a partial file: it is reported incomplete (or short).
      const done = await api('POST', f.links.complete, { body: { meta: META } });
      expect([422], JSON.stringify(done.body)).toContain(done.status);
      expect(leftovers()).toEqual([]);
      await publishedIntact();
      expect((await api('DELETE', s.links.session)).status).toBe(204);
      tally('exhaustion cases');
    },
  );

  it('with the disk full to the last byte: uploads get 507, SQLite answers without a 5xx other than 507 and is not corrupted; after freeing space the same uploads succeed', async () => {
    // Sessions and files created while there is room, to upload into once the disk is full.
    const s = await createSession('disk-full-later', '1.0');
    const small = MECHANISMS.map(({ id }, i) => ({
      id,
      bytes: randomBytes(512 * 1024 + i),
      filename: `disk_full_later-1.0-py3-none-linux_${i}.whl`,
    }));
    const files = [];
    for (const m of small) files.push(await createFile(s, m.filename, m.bytes, m.id));
    const filler = fillDisk();
    try {
      for (const [i, m] of MECHANISMS.entries())
        expectInsufficientStorage(await m.send(files[i], small[i]!.bytes), `${m.id} on a full disk`);
      expect(leftovers()).toEqual([]);
      // The database on the full disk: writes may fail (507), but never with another 5xx.
      const writes = [
        await api('POST', t.url, { body: { meta: META, name: 'disk-full-db', version: '1.0' } }),
        await api('POST', s.links.extend, { body: { meta: META, 'extend-for': 3600 } }),
        await api('POST', s.links.upload, {
          body: {
            meta: META,
            filename: 'disk_full_later-1.0.tar.gz',
            size: 3,
            hashes: { sha256: sha256(Buffer.from('abc')) },
            mechanism: 'http-post-bytes',
          },
        }),
      ];
      console.log(
        'database writes on the full disk answered:',
        writes.map((w) => `${w.status}${w.status >= 400 ? ` ${w.body.code}` : ''}`).join(', '),
      );
      for (const w of writes) {
        if (w.status >= 500) {
          expect(w.status, JSON.stringify(w.body)).toBe(507);
          expect(w.body.code).toBe('insufficient-storage');
        }
      }
      expect((await api('GET', s.links.session)).status).toBe(200); // reads still work
      integrity();
      await publishedIntact();
    } finally {
      rmSync(filler);
    }
    // Space is back: the same uploads go through, complete, and publish.
    for (const [i, m] of MECHANISMS.entries()) {
      const sent = await m.send(files[i], small[i]!.bytes);
      expect(sent.status, `${m.id} after freeing space: ${JSON.stringify(sent.body).slice(0, 300)}`).toBeLessThan(300);
      const done = await api('POST', files[i].links.complete, { body: { meta: META } });
      expect(done.status, `${m.id}: ${JSON.stringify(done.body)}`).toBe(201);
    }
    const now = await api('GET', s.links.session);
    for (const name of Object.keys(now.body.files))
      if (!small.some((m) => m.filename === name)) await api('DELETE', now.body.files[name].link);
    const pub = await api('POST', s.links.publish, { body: { meta: META } });
    expect(pub.status, JSON.stringify(pub.body)).toBe(201);
    const store = t.server.container.resolve(SESSION_STORE);
    for (const m of small) expect((await store.getPublishedFile('disk-full-later', m.filename))?.hashes.sha256).toBe(sha256(m.bytes));
    integrity();
    await publishedIntact();
    tally('exhaustion cases', MECHANISMS.length + 3);
  });
});
