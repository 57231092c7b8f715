/**
 * PEP 694 "Atomic Publication and Conflicts": the legacy API and Upload 2.0 share one published
 * namespace. A legacy upload racing an Upload 2.0 publish of the same file name: exactly one wins,
 * the other gets 409, nothing gets a 5xx, and /simple/ lists the file once (with the winner's
 * bytes). Also the reservation of a deferred publish ("exactly as if the file were already
 * published" for a legacy upload) and the best-effort check at file upload session creation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE } from '@pep694/core';
import { legacyUpload, sleep, tally, type TestServer } from '../testing/index.js';
import { api, createFile, createSession, META, sha256, startServer, uploadFile } from './helpers.js';
import { TEST_TOKENS } from '../testing/index.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const ROUNDS = 24;

/** The files /simple/ lists for a project (JSON). */
async function listed(origin: string, project: string): Promise<{ filename: string; hashes: { sha256: string } }[]> {
  const res = await fetch(`${origin}/simple/${project}/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  if (res.status === 404) return [];
  return ((await res.json()) as { files: { filename: string; hashes: { sha256: string } }[] }).files;
}

/** The sha256 of the bytes the store serves for a published file. */
async function servedDigest(project: string, filename: string): Promise<string> {
  const store = t!.server.container.resolve(SESSION_STORE);
  const blobs = t!.server.container.resolve(BLOB_STORE);
  const f = await store.getPublishedFile(project, filename);
  const chunks: Buffer[] = [];
  for await (const c of await blobs.read(f!.blobKey)) chunks.push(c as Buffer);
  return sha256(Buffer.concat(chunks));
}

describe('PEP 694 Atomic Publication and Conflicts: the legacy API and Upload 2.0 in one namespace', () => {
  it(`a legacy upload racing an Upload 2.0 publish of the same file name (${ROUNDS} rounds): exactly one wins, the other 409, /simple/ lists it once`, async () => {
    t = await startServer({ config: { index: {}, legacy: {} } });
    const legacyUrl = `${t.origin}/legacy/`;
    const winners = { legacy: 0, session: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const version = `1.${i}`;
      const filename = `race_legacy-${version}.tar.gz`;
      const viaSession = Buffer.from(`upload 2.0 bytes, round ${i}`);
      const viaLegacy = Buffer.from(`legacy bytes, round ${i}`);
      const s = await createSession(t.url, 'race-legacy', version);
      await uploadFile(s, filename, viaSession);
      // The publish starts after a delay swept over the rounds (0 to 44 ms): early, it wins; late,
      // the legacy upload has its bytes in and publishes first; in between they meet in the store.
      const delay = (i % 12) * 4;
      const publish = async () => {
        await sleep(delay);
        return api('POST', s.links.publish!, { body: { meta: META } });
      };
      const [p, l] = await Promise.all([publish(), legacyUpload(legacyUrl, { token: TEST_TOKENS.alice, filename, bytes: viaLegacy })]);
      expect(p.status, JSON.stringify(p.body)).toBeLessThan(500);
      expect(l.status, l.text).toBeLessThan(500);
      const files = (await listed(t.origin, 'race-legacy')).filter((f) => f.filename === filename);
      expect(files, 'the file is listed exactly once').toHaveLength(1);
      if (p.status === 201) {
        winners.session++;
        expect(l.status, l.text).toBe(409);
        expect(l.reason).toContain('File already exists');
        expect(await servedDigest('race-legacy', filename)).toBe(sha256(viaSession));
      } else {
        winners.legacy++;
        expect(l.status, l.text).toBe(200);
        expect(p.status, JSON.stringify(p.body)).toBe(409);
        expect(p.body.code).toBe('file-already-published');
        expect(await servedDigest('race-legacy', filename)).toBe(sha256(viaLegacy));
      }
      expect(files[0]!.hashes.sha256).toBe(await servedDigest('race-legacy', filename));
    }
    console.log(`legacy vs Upload 2.0 publish: ${winners.session} won by the session, ${winners.legacy} by the legacy upload`);
    tally('races run', ROUNDS);
  });

  it('a file name reserved by a deferred publish gets 409 on /legacy/, exactly as if published; it is free again after the publish fails', async () => {
    let release: (ok: boolean) => void = () => {};
    const gate = new Promise<boolean>((resolve) => (release = resolve));
    t = await startServer({
      config: { index: {}, legacy: {} },
      publishChecks: [async () => ((await gate) ? { ok: true } : { ok: false, notices: ['held by the test, then failed'] })],
    });
    const s = await createSession(t.url, 'reserved-legacy', '1.0');
    await uploadFile(s, 'reserved_legacy-1.0.tar.gz', Buffer.from('session bytes'));
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(202);
    const during = await legacyUpload(`${t.origin}/legacy/`, {
      token: TEST_TOKENS.alice,
      filename: 'reserved_legacy-1.0.tar.gz',
      bytes: Buffer.from('legacy bytes'),
    });
    expect(during.status, during.text).toBe(409);
    expect(during.reason).toContain('File already exists');
    release(false);
    await expect.poll(async () => (await api('GET', s.links.session!)).body.status).toBe('error');
    const after = await legacyUpload(`${t.origin}/legacy/`, {
      token: TEST_TOKENS.alice,
      filename: 'reserved_legacy-1.0.tar.gz',
      bytes: Buffer.from('legacy bytes'),
    });
    expect(after.status, after.text).toBe(200);
  });

  it('a file published through /legacy/ gets file-already-published at Upload 2.0 file upload session creation, and a live session of the release does not block /legacy/', async () => {
    t = await startServer({ config: { index: {}, legacy: {} } });
    const open = await createSession(t.url, 'shared-name', '1.0');
    const bytes = Buffer.from('legacy first');
    const up = await legacyUpload(`${t.origin}/legacy/`, { token: TEST_TOKENS.alice, filename: 'shared_name-1.0.tar.gz', bytes });
    expect(up.status, up.text).toBe(200);
    const res = await api('POST', open.links.upload!, {
      body: {
        meta: META,
        filename: 'shared_name-1.0.tar.gz',
        size: bytes.length,
        hashes: { sha256: sha256(bytes) },
        mechanism: 'http-post-bytes',
      },
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('file-already-published');
    // Another file of the release still goes through the open session.
    await createFile(open, 'shared_name-1.0-py3-none-any.whl', Buffer.from('a wheel'));
  });

  it("the reaper's blob sweep leaves a legacy upload's staged bytes alone while its validators run (they have no row yet)", async () => {
    let entered: () => void = () => {};
    const inValidator = new Promise<void>((resolve) => (entered = resolve));
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    t = await startServer({
      config: { index: {}, legacy: {} },
      validators: [
        {
          name: 'held by the test',
          validate: async () => {
            entered();
            await gate;
            return { ok: true };
          },
        },
      ],
    });
    const bytes = Buffer.from('staged while the sweep runs');
    const upload = legacyUpload(`${t.origin}/legacy/`, { token: TEST_TOKENS.alice, filename: 'swept_pkg-1.0.tar.gz', bytes });
    await inValidator;
    await t.server.reap(); // a full pass, blob sweep included
    release();
    const res = await upload;
    expect(res.status, res.text).toBe(200);
    expect(await servedDigest('swept-pkg', 'swept_pkg-1.0.tar.gz')).toBe(sha256(bytes));
  });
});
