/**
 * Crash consistency while bytes are purged (issue #10): a session holding a completed file
 * (http-post-bytes), a staged but not completed one (multipart) and a half-sent tus upload is
 * canceled (PEP 694 "Session Cancellation"), has a file deleted ("File Upload Session
 * Cancellation"), or expires and is purged by the reaper ("Session Expiration"), and the server is
 * killed between the database step and the purge of each blob. After the restart (whose reaper
 * pass sweeps blobs) nothing of those files may be left anywhere, and nothing else be lost.
 *
 * The same on SQLite + files and on PostgreSQL + S3 (the pg-s3 project), which make different
 * calls while setting up: so the faults count only from `arm()` on, after the set-up, and name the
 * call they hit where a count would depend on the order of concurrent purges (`…:files/`: the
 * delete of a file's permanent bytes). Expiry is not a race against short lifetimes either: the
 * session is set up with the default ones and then made due in the store (`expireNow`), and the
 * server's reaper (every 100 ms) expires it. On PostgreSQL + S3 the tus upload is in the bucket
 * (under tus/, as main.ts keeps it there), and the invariants look for it there too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tally } from '@pep694/server/testing';
import {
  arm,
  AUTH,
  bytesFrom,
  call,
  checkInvariants,
  dataDir,
  idOf,
  injectedKill,
  int,
  killAll,
  killNow,
  META,
  observed,
  openSession,
  seeded,
  startServer,
  stopServer,
  upload,
  type CrashServer,
  type Observed,
} from './harness.js';
import { expireNow } from './backends.js';

const root = mkdtempSync(join(tmpdir(), 'pep694-crash-purge-'));
afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});

type Action = 'cancel' | 'delete-completed' | 'delete-tus' | 'file-expiry' | 'session-expiry';

/** The session of one kill point: A completed, B staged (not completed), C half a tus upload. */
async function setUp(server: CrashServer, seen: Observed, version: string, random: () => number) {
  const session = await openSession(server, seen, 'demo-pkg', version);
  const file = (tag: string) => `demo_pkg-${version}-py3-none-${tag}.whl`;
  const a = await upload(session, seen, file('a'), bytesFrom(random, int(random, 1000, 100_000)), 'http-post-bytes');
  const done = await call('POST', a.links.complete, { meta: META });
  expect(done.status, JSON.stringify(done.body)).toBe(201);
  seen.files.set(idOf(a.links['file-upload-session']), 'completed');
  const b = await upload(session, seen, file('b'), bytesFrom(random, int(random, 1000, 100_000)), 'vnd-pep694-multipart');
  const cBytes = bytesFrom(random, int(random, 10_000, 200_000));
  const c = await upload(session, seen, file('c'), cBytes, 'vnd-pep694-tus', false);
  const half = cBytes.subarray(0, int(random, 1, cBytes.length - 1));
  const patch = await fetch(c.mechanism.upload_url, {
    method: 'PATCH',
    headers: { authorization: AUTH, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
    body: half,
  });
  expect(patch.status).toBe(204);
  return { session, a, b, c };
}

describe('crash consistency: SIGKILL during cancel, delete and expiry purge', () => {
  it('killed between the state change and the purge of each file; after the restart no bytes of them remain', async () => {
    const random = seeded('purge');
    const dir = dataDir(root, 'purge');
    const seen = observed();
    let port: number | undefined;
    // `hits`: which call the fault must hit (the first argument of the killed call), checked below.
    type Hits = 'session' | 'a' | 'c' | 'b-or-c' | 'files/';
    // `forget`: the session's retention has run out when the server restarts, so its reaper pass
    // forgets the rows before its sweep: the purge's leftovers are then bytes and a tus upload no
    // row names, which on a shared store (PostgreSQL) the sweep spares while they are young (another
    // node may be creating them), but for the crash server's pre-READY aging (crash-server.mjs).
    const points: { action: Action; fault?: string; hits?: Hits; forget?: boolean }[] = [
      { action: 'cancel', fault: 'store:cancelSession:1:after', hits: 'session' },
      { action: 'cancel', fault: 'blob:delete:1:before' },
      { action: 'cancel', fault: 'blob:delete:1:before:files/', hits: 'files/' },
      { action: 'cancel' },
      { action: 'delete-completed', fault: 'store:updateFile:1:after', hits: 'a' },
      { action: 'delete-completed', fault: 'blob:delete:1:before:files/', hits: 'files/' },
      { action: 'delete-tus', fault: 'store:updateFile:1:after', hits: 'c' },
      { action: 'file-expiry', fault: 'store:updateFile:1:after', hits: 'b-or-c' },
      { action: 'file-expiry', fault: 'blob:delete:1:before' },
      { action: 'session-expiry', fault: 'store:cancelSession:1:after', hits: 'session' },
      { action: 'session-expiry', fault: `blob:delete:${int(random, 1, 3)}:before` },
      { action: 'session-expiry', fault: 'store:updateSession:1:before', hits: 'session' },
      { action: 'cancel', fault: 'store:cancelSession:1:after', hits: 'session', forget: true },
    ];
    for (const [i, { action, fault, hits, forget }] of points.entries()) {
      const where = `purge kill point ${i} (${action}${forget ? ', forgotten' : ''}, ${fault ?? 'external'})`;
      // Expiry: a fast reaper, so it purges (and dies) soon after expireNow below.
      const expiry = action === 'file-expiry' || action === 'session-expiry';
      let server = await startServer(dir, {
        port,
        sharedTus: true,
        armLater: true,
        ...(fault ? { fault } : {}),
        ...(expiry ? { config: { reaperInterval: 100 } } : {}),
      });
      port = server.port;
      const { session, a, b, c } = await setUp(server, seen, `3.0.${i}`, random);
      const ids = {
        session: idOf(session.links.session),
        a: idOf(a.links['file-upload-session']),
        b: idOf(b.links['file-upload-session']),
        c: idOf(c.links['file-upload-session']),
      };
      await arm(server);
      if (action === 'file-expiry') await expireNow(dir, { files: [ids.b, ids.c] });
      if (action === 'session-expiry') await expireNow(dir, { sessions: [ids.session] });
      const target =
        action === 'cancel'
          ? session.links.session
          : action === 'delete-completed'
            ? a.links['file-upload-session']
            : action === 'delete-tus'
              ? c.links['file-upload-session']
              : undefined;
      const deleting = target ? call('DELETE', target).catch((err: unknown) => err) : undefined;
      if (fault) {
        await injectedKill(server, where);
        const hit = /^KILLED \S+ \S+\((.*)\)$/m.exec(server.output())?.[1] ?? '';
        const expected = { session: [ids.session], a: [ids.a], c: [ids.c], 'b-or-c': [ids.b, ids.c], 'files/': [`files/${ids.a}`] };
        if (hits) expect(expected[hits], `${where}: the fault hit the intended call (${hit})`).toContain(hit);
      } else {
        await new Promise((r) => setTimeout(r, int(random, 0, 5)));
        await killNow(server);
      }
      await deleting;
      // Retention 1 s (the least), and a second since the cancel: the restart's pass forgets it.
      if (forget) await new Promise((r) => setTimeout(r, 1_100));
      server = await startServer(dir, { port, reap: true, sharedTus: true, ...(forget ? { config: { retention: 1 } } : {}) });
      await checkInvariants(dir, server, seen, where);
      // The client retries the DELETE it saw fail; then nothing of the target may remain.
      if (target) {
        const again = await call('DELETE', target);
        expect([204, 404], `${where}: ${JSON.stringify(again.body)}`).toContain(again.status);
      }
      const status = await call('GET', session.links.session);
      if (forget) expect(status.status, `${where}: the session was forgotten`).toBe(404);
      else if (action === 'cancel' || action === 'session-expiry') expect(status.body.status, where).toBe('canceled');
      for (const [id] of seen.files) {
        const f = await call('GET', `${server.url}files/${id}`);
        if (f.status === 200) seen.files.set(id, f.body.status);
      }
      if (status.status === 200) seen.sessions.set(idOf(session.links.session), status.body.status);
      await checkInvariants(dir, server, seen, `${where}, after the retry`);
      // Free the version's files for good: cancel what is left.
      if (status.body.status === 'open') expect((await call('DELETE', session.links.session)).status, where).toBe(204);
      seen.sessions.set(idOf(session.links.session), 'canceled');
      for (const [id, s] of seen.files) {
        const f = s === 'canceled' ? undefined : await call('GET', `${server.url}files/${id}`);
        if (f?.status === 200) seen.files.set(id, f.body.status);
      }
      await stopServer(server);
      tally('kill points survived');
    }
    const last = await startServer(dir, { port, reap: true, sharedTus: true });
    await checkInvariants(dir, last, seen, `purge after ${points.length} kill points`);
    await stopServer(last);
  }, 300_000);
});
