/**
 * Crash consistency of publishing (issue #10, PEP 694 "Atomic Publication and Conflicts"): the
 * real release (the demo_pkg 1.0.0 wheel and sdist from the fixtures, validated) is published
 * while the server is killed: from outside at seeded random moments, at the publish transaction
 * (before it, after its commit), and during a deferred publish (an operator's pre-publish check
 * re-reading the files, and its settlement). After the restart the release is fully published or
 * not at all, nowhere partly (store and /simple/), and a publish retried by the client succeeds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tally } from '@pep694/server/testing';
import {
  call,
  checkInvariants,
  dataDir,
  fixture,
  idOf,
  injectedKill,
  killAll,
  killNow,
  META,
  observed,
  openSession,
  seeded,
  SEED,
  settled,
  startServer,
  stopServer,
  upload,
  type Observed,
} from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'pep694-crash-publish-'));
afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});
const RELEASE = [fixture('demo_pkg-1.0.0-py3-none-any.whl'), fixture('demo_pkg-1.0.0.tar.gz')];
const MECHANISMS = ['http-post-bytes', 'vnd-pep694-multipart', 'vnd-pep694-tus', 'vnd-pep694-resumable-i8'];

/** One kill point: a fresh data directory (the fixture release can be published once per index). */
async function killPoint(
  name: string,
  opts: { fault?: string; external?: number; publishCheck?: boolean; mechanism: string },
): Promise<'published' | 'open'> {
  const where = `publish kill point ${name} (${opts.fault ?? `external after ${opts.external} ms`}${opts.publishCheck ? ', deferred' : ''})`;
  const dir = dataDir(root, name);
  const seen: Observed = observed();
  // Blob reads are counted from the publish on: files are then uploaded and completed (which
  // reads them to validate) before the faulty server starts. Other faults count only publish calls.
  const fresh = opts.fault?.startsWith('blob:read');
  const common = { validate: true, ...(opts.publishCheck ? { publishCheck: true } : {}) };
  let server = await startServer(dir, { ...common, ...(opts.fault && !fresh ? { fault: opts.fault } : {}) });
  const session = await openSession(server, seen, 'demo-pkg', '1.0.0');
  for (const f of RELEASE) {
    const file = await upload(session, seen, f.filename, f.bytes, opts.mechanism);
    const done = await call('POST', file.links.complete, { meta: META });
    expect(done.status, `${where}: ${JSON.stringify(done.body)}`).toBe(201);
    seen.files.set(idOf(file.links['file-upload-session']), 'completed');
  }
  const port = server.port;
  if (fresh) {
    await stopServer(server);
    server = await startServer(dir, { ...common, port, fault: opts.fault! });
  }
  const publishing = call('POST', session.links.publish, { meta: META }).catch((err: unknown) => err);
  if (opts.fault) {
    if (opts.publishCheck && !opts.fault.startsWith('store:publish')) {
      // The check may run (and the kill land) before the 202 is written.
      const accepted = (await publishing) as { status?: number };
      if (accepted.status !== undefined) {
        expect(accepted.status, `${where}: deferred`).toBe(202);
        seen.sessions.set(idOf(session.links.session), 'processing');
      }
    }
    await injectedKill(server, where);
  } else {
    await new Promise((r) => setTimeout(r, opts.external));
    await killNow(server);
  }
  await publishing;
  server = await startServer(dir, { ...common, port, reap: true });
  await checkInvariants(dir, server, seen, where);
  const before = await settled(session.links.session);
  expect(['open', 'published'], `${where}: ${JSON.stringify(before.body)}`).toContain(before.body.status);
  // The client retries the publish it saw fail; the release ends published, whole.
  if (before.body.status === 'open') {
    const again = await call('POST', session.links.publish, { meta: META });
    expect([201, 202], `${where}: ${JSON.stringify(again.body)}`).toContain(again.status);
    expect((await settled(session.links.session)).body.status, where).toBe('published');
  }
  seen.sessions.set(idOf(session.links.session), 'published');
  await checkInvariants(dir, server, seen, `${where}, republished`);
  await stopServer(server);
  tally('kill points survived');
  return before.body.status;
}

describe('crash consistency: SIGKILL during publish (PEP 694 "Atomic Publication and Conflicts")', () => {
  it('killed from outside at random moments around the publish: all or nothing, and a retry publishes', async () => {
    const random = seeded('publish/external');
    const rounds = 4;
    let fully = 0;
    for (let round = 0; round < rounds; round++) {
      const outcome = await killPoint(`external-${round}`, {
        external: Math.floor(random() * 30),
        mechanism: MECHANISMS[round % MECHANISMS.length]!,
      });
      if (outcome === 'published') fully += 1;
    }
    console.log(`crash (seed ${SEED}): external kills around publish: ${fully} of ${rounds} releases already published at the restart`);
  }, 300_000);

  it('killed at the publish transaction, and during a deferred publish (pre-publish checks, settlement)', async () => {
    const points: { fault: string; publishCheck?: boolean }[] = [
      { fault: 'store:publish:1:before' },
      { fault: 'store:publish:1:after' },
      { fault: 'store:publish:1:after', publishCheck: true },
      { fault: 'blob:read:1:before', publishCheck: true },
      { fault: 'blob:read:2:before', publishCheck: true },
      { fault: 'store:settlePublish:1:before', publishCheck: true },
      { fault: 'store:settlePublish:1:after', publishCheck: true },
    ];
    const outcomes: string[] = [];
    for (const [i, p] of points.entries())
      outcomes.push(await killPoint(`fault-${i}`, { ...p, mechanism: MECHANISMS[i % MECHANISMS.length]! }));
    // After the commit the release is published at the restart; before it, not: the kill points bracket it.
    expect(outcomes[0], `(seed ${SEED})`).toBe('open');
    expect(outcomes[1], `(seed ${SEED})`).toBe('published');
    expect(outcomes[6], `(seed ${SEED})`).toBe('published');
  }, 300_000);
});
