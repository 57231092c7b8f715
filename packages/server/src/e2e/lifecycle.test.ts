import { afterEach, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE } from '@pep694/core';
import { openDescriptorTargets } from '../storage/test-support.js';
import type { TestServer } from '../testing/index.js';
import { api, createFile, createSession, fixture, META, startServer, uploadFile, WHEEL } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** A clock the test moves by hand, so expiry and retention run without waiting. */
function manualClock() {
  let now = Date.now();
  return { now: () => new Date(now), advance: (seconds: number) => (now += seconds * 1000) };
}

async function poll(url: string, until: (body: any) => boolean) {
  for (let i = 0; i < 200; i++) {
    const res = await api('GET', url);
    if (until(res.body)) return res;
    await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? 1) * 10));
  }
  throw new Error(`gave up polling ${url}`);
}

describe('closing the server', () => {
  it('leaves nothing open in the data directory: the descriptors kept for directory fsyncs are closed', async () => {
    const server = await startServer();
    t = server;
    const s = await createSession(server.url);
    await uploadFile(s, WHEEL, fixture(WHEEL));
    await server.close();
    t = undefined;
    // A descriptor left open holds the filesystem busy: an operator could not unmount the volume.
    expect((await openDescriptorTargets()).filter((l) => l.startsWith(server.dataDir))).toEqual([]);
  });
});

describe('PEP 694 Complete a Publishing Session: deferred (202) publishing', () => {
  it('202 + processing, Location, then published; cancel while processing is 409', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t = await startServer({ publishChecks: [async () => (await gate, { ok: true })] });
    const s = await createSession(t.url);
    await uploadFile(s, WHEEL, fixture(WHEEL));
    const res = await api('POST', s.links.publish!, { body: { meta: META } });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(s.links.session);
    expect(res.body.status).toBe('processing');
    // PEP 694 Publishing Session Cancellation: MUST reject with 409 while processing.
    const cancel = await api('DELETE', s.links.session!);
    expect(cancel.status).toBe(409);
    expect(cancel.body.code).toBe('session-processing');
    // PEP 694 Atomic Publication: while the reservation is held, the filename is taken.
    const store = t.server.container.resolve(SESSION_STORE);
    expect(await store.isFilenameTaken('demo-pkg', WHEEL)).toBe(true);
    expect(await store.isPublishedProject('demo-pkg')).toBe(false);
    release();
    const done = await poll(s.links.session!, (b) => b.status !== 'processing');
    expect(done.body.status).toBe('published');
    expect((await store.listPublishedFiles('demo-pkg')).map((f) => f.filename)).toEqual([WHEEL]);
  });
  it('a deferred failure moves the session to error with notices; it stays editable and can publish again', async () => {
    let fail = true;
    t = await startServer({
      publishChecks: [
        async (_s, files) =>
          fail
            ? {
                ok: false,
                notices: ['Publishing failed: the scanner flagged a file.'],
                fileNotices: { [files[0]!.filename]: ['flagged by the scanner'] },
              }
            : { ok: true },
      ],
    });
    const s = await createSession(t.url);
    await uploadFile(s, WHEEL, fixture(WHEEL));
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(202);
    const failed = await poll(s.links.session!, (b) => b.status !== 'processing');
    expect(failed.body.status).toBe('error');
    expect(failed.body.notices).toEqual(['Publishing failed: the scanner flagged a file.']);
    expect(failed.body.files[WHEEL].notices).toEqual(['flagged by the scanner']);
    // The reservation is released: the filename is free again.
    const store = t.server.container.resolve(SESSION_STORE);
    expect(await store.isFilenameTaken('demo-pkg', WHEEL)).toBe(false);
    // error is fully editable: upload, delete, publish again.
    const extra = await createFile(s, 'demo_pkg-1.0.0.tar.gz', fixture('demo_pkg-1.0.0.tar.gz'));
    expect((await api('DELETE', extra.links['file-upload-session']!)).status).toBe(204);
    fail = false;
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(202);
    expect((await poll(s.links.session!, (b) => b.status !== 'processing')).body.status).toBe('published');
  });
});

describe('PEP 694 Publishing Session Cancellation: expiry', () => {
  it('the reaper cancels expired sessions and purges their bytes', async () => {
    const clock = manualClock();
    t = await startServer({ clock, config: { sessionTtl: 3600, retention: 600 } });
    const s = await createSession(t.url);
    const done = await uploadFile(s, WHEEL, fixture(WHEEL));
    const fileId = done.links['file-upload-session']!.split('/').pop()!;
    const blobs = t.server.container.resolve(BLOB_STORE);
    expect(await blobs.size(`files/${fileId}`)).toBeGreaterThan(0);
    clock.advance(3599);
    await t.server.reap();
    expect((await api('GET', s.links.session!)).body.status).toBe('open');
    clock.advance(2);
    await t.server.reap();
    const status = await api('GET', s.links.session!);
    expect(status.body.status).toBe('canceled');
    expect(status.body.notices.join(' ')).toMatch(/expired/);
    expect(await blobs.size(`files/${fileId}`)).toBeUndefined();
    // The name+version is free again.
    await createSession(t.url);
  });
  it('PEP 694 Session Status Retention: terminal status is kept for the retention period, then 404; file URLs follow', async () => {
    const clock = manualClock();
    t = await startServer({ clock, config: { retention: 600 } });
    const s = await createSession(t.url);
    const file = await uploadFile(s, WHEEL, fixture(WHEEL));
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(201);
    clock.advance(599);
    await t.server.reap();
    expect((await api('GET', s.links.session!)).body.status).toBe('published');
    expect((await api('GET', file.links['file-upload-session']!)).status).toBe(200);
    clock.advance(2);
    await t.server.reap();
    expect((await api('GET', s.links.session!)).status).toBe(404);
    expect((await api('GET', file.links['file-upload-session']!)).status).toBe(404);
    // Published bytes are not touched by retention.
    const store = t.server.container.resolve(SESSION_STORE);
    const [published] = await store.listPublishedFiles('demo-pkg');
    expect(await t.server.container.resolve(BLOB_STORE).size(published!.blobKey)).toBe(fixture(WHEEL).length);
  });
  it('expired pending file upload sessions are canceled', async () => {
    const clock = manualClock();
    t = await startServer({ clock, config: { fileTtl: 60 } });
    const s = await createSession(t.url);
    const f = await createFile(s, WHEEL, fixture(WHEEL));
    clock.advance(61);
    await t.server.reap();
    expect((await api('GET', f.links['file-upload-session']!)).body.status).toBe('canceled');
    expect((await api('GET', s.links.session!)).body.files).toEqual({});
  });
  it('the reaper deletes blobs that no record refers to', async () => {
    const clock = manualClock();
    t = await startServer({ clock });
    const blobs = t.server.container.resolve(BLOB_STORE);
    const w = await blobs.stage('staging/orphan-without-a-file');
    w.stream.end(Buffer.from('orphan'));
    await w.commit();
    // Past the age (two hours by default) under which a store several nodes share (PEP694_TEST_STORE=postgres)
    // spares a key no record names: another node may be about to record it.
    clock.advance(2 * 3600 + 1);
    const r = await t.server.reap();
    expect(r.orphans).toBe(1);
    expect(await blobs.size('staging/orphan-without-a-file')).toBeUndefined();
  });
});
