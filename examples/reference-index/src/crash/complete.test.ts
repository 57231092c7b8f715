/**
 * Crash consistency during completion (issue #10): killed while the host verifies a real wheel
 * (hash, archive validation), moves it from staging to its permanent key, and records it; also
 * during deferred verification (202 + processing). After the restart the client's completion must
 * succeed (PEP 694 "Complete a File Upload Session") and the stored bytes be the wheel's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attestation, tally } from '@pep694/server/testing';
import {
  blobBytes,
  call,
  checkInvariants,
  dataDir,
  fileRow,
  fixture,
  idOf,
  injectedKill,
  int,
  killAll,
  killNow,
  META,
  observed,
  openSession,
  pick,
  seeded,
  settled,
  sha256,
  startServer,
  stopServer,
  upload,
} from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'pep694-crash-complete-'));
afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});
const WHEEL = fixture('demo_pkg-1.0.0-py3-none-any.whl');
const MECHANISMS = ['http-post-bytes', 'vnd-pep694-multipart', 'vnd-pep694-tus', 'vnd-pep694-resumable-i8'] as const;

describe('crash consistency: SIGKILL during completion (PEP 694 "Complete a File Upload Session")', () => {
  it('killed while a real wheel is verified, moved and recorded; after the restart completion succeeds with the right bytes', async () => {
    const random = seeded('complete');
    const dir = dataDir(root, 'complete');
    const seen = observed();
    let port: number | undefined;
    const points = 10;
    for (let i = 0; i < points; i++) {
      const mechanism = MECHANISMS[i % MECHANISMS.length]!;
      // The last three: deferred verification, reached as in production after a restart between
      // upload and completion (the in-memory digests are gone, the host re-reads the file).
      const deferred = i >= points - 3;
      const faults = deferred
        ? ['blob:read:1:before', 'store:updateFile:2:before', 'store:updateFile:2:after', 'blob:move:1:after']
        : [
            'store:updateFile:1:before',
            'store:updateFile:1:after',
            'blob:move:1:before',
            'blob:move:1:after',
            'blob:read:1:before',
            'external',
            ...(mechanism === 'vnd-pep694-tus' || mechanism.includes('-resumable-')
              ? ['blob:adoptFile:1:before', 'blob:adoptFile:1:after']
              : []),
          ];
      const fault = pick(random, faults);
      const where = `completion kill point ${i} (${mechanism}${deferred ? ', deferred' : ''}, ${fault})`;
      const config = deferred ? { limits: { deferVerificationAbove: 0 } } : undefined;
      let server = await startServer(dir, { port, validate: true, ...(deferred || fault === 'external' ? {} : { fault }) });
      port = server.port;
      const session = await openSession(server, seen, 'demo-pkg', '1.0.0');
      const file = await upload(session, seen, WHEEL.filename, WHEEL.bytes, mechanism);
      // http-post-bytes also takes PEP 740 attestations: answered 204, they must survive the kill.
      const attested = mechanism === 'http-post-bytes' ? [attestation(WHEEL.filename, WHEEL.sha256)] : undefined;
      if (attested) expect((await call('POST', file.mechanism.attestations_url, attested, 'application/json')).status, where).toBe(204);
      if (deferred) {
        await stopServer(server);
        server = await startServer(dir, { port, validate: true, fault, ...(config ? { config } : {}) });
      }
      const completing = call('POST', file.links.complete, { meta: META }).catch((err: unknown) => err);
      if (fault === 'external') {
        await new Promise((r) => setTimeout(r, int(random, 0, 10)));
        await killNow(server);
      } else {
        if (deferred) {
          // The background verification may read (and the kill land) before the 202 is written.
          const accepted = (await completing) as { status?: number };
          if (accepted.status !== undefined) {
            expect(accepted.status, `${where}: deferred`).toBe(202);
            seen.files.set(idOf(file.links['file-upload-session']), 'processing');
          }
        }
        await injectedKill(server, where);
      }
      await completing;
      server = await startServer(dir, { port, validate: true, reap: true, ...(config ? { config } : {}) });
      await checkInvariants(dir, server, seen, where);

      // The client goes on: it completes (again) unless the file already is.
      let status = await settled(file.links['file-upload-session']);
      expect(['pending', 'completed'], `${where}: ${JSON.stringify(status.body)}`).toContain(status.body.status);
      if (status.body.status === 'pending') {
        const done = await call('POST', file.links.complete, { meta: META });
        expect([201, 202], `${where}: ${JSON.stringify(done.body)}`).toContain(done.status);
        status = await settled(file.links['file-upload-session']);
      }
      expect(status.body.status, `${where}: ${JSON.stringify(status.body)}`).toBe('completed');
      const fileId = idOf(file.links['file-upload-session']);
      expect(sha256((await blobBytes(dir, `files/${fileId}`)) ?? Buffer.alloc(0)), where).toBe(WHEEL.sha256);
      if (attested) {
        const stored = (await fileRow(dir, fileId))?.attestations ?? null;
        expect(stored === null ? null : JSON.parse(stored), `${where}: the attestations answered 204 are kept with the file`).toEqual(
          attested,
        );
      }
      // Cancel to free 1.0.0 for the next kill point (its bytes must go; the next check sees to it).
      expect((await call('DELETE', session.links.session)).status, where).toBe(204);
      seen.sessions.set(idOf(session.links.session), 'canceled');
      seen.files.set(fileId, 'canceled');
      await stopServer(server);
      tally('kill points survived');
    }
    const last = await startServer(dir, { port, reap: true });
    await checkInvariants(dir, last, seen, `completion after ${points} kill points`);
    await stopServer(last);
  }, 300_000);
});
