/**
 * Crash consistency of the legacy upload API (issue #16): the reference index SIGKILLed while a
 * legacy upload streams into staging, around the staging commit, around the move to the permanent
 * key, around the store's one-step publish, and from outside at a random moment. After the restart
 * (with a reaper pass and blob sweep) the invariants of harness.ts hold: nothing partial is kept or
 * listed, and the file is either published whole (with the bytes sent) or not at all, in which case
 * the same upload, sent again, succeeds; if it was published, the same upload gets 409 "File already
 * exists" (what `twine upload --skip-existing` skips). Kill points come from PEP694_CRASH_SEED.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { legacyUpload, tally } from '@pep694/server/testing';
import {
  bytesFrom,
  checkInvariants,
  dataDir,
  injectedKill,
  int,
  killAll,
  killNow,
  observed,
  seeded,
  sha256,
  startServer,
  stopServer,
  TOKEN,
} from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'pep694-crash-legacy-'));
afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash consistency: SIGKILL mid legacy upload (PEP 694 "Legacy API", one namespace)', () => {
  it('killed while the form streams into staging, around the commit, the move and the publish, or from outside: nothing partial, and the retry is answered right', async () => {
    const random = seeded('legacy');
    const dir = dataDir(root, 'legacy');
    const seen = observed();
    let port: number | undefined;
    const kinds = [
      'staged-bytes',
      'commit:1:before',
      'commit:1:after',
      'blob:move:1:before',
      'blob:move:1:after',
      'store:publishFile:1:before',
      'store:publishFile:1:after',
      'external',
    ] as const;
    // Every kind once, in an order drawn from the seed.
    const order = [...kinds];
    for (let j = order.length - 1; j > 0; j--) {
      const k = int(random, 0, j);
      [order[j], order[k]] = [order[k]!, order[j]!];
    }
    const points = order.length;
    for (let i = 0; i < points; i++) {
      const kind = order[i]!;
      const bytes = bytesFrom(random, int(random, 128 * 1024, 1024 * 1024));
      const fault = kind === 'staged-bytes' ? `staged-bytes:${int(random, 1, bytes.length - 1)}` : kind === 'external' ? undefined : kind;
      const filename = `demo_pkg-1.9.${i}.tar.gz`;
      const where = `legacy kill point ${i} (${fault ?? 'external'})`;
      seen.contents.set(filename, sha256(bytes));
      let server = await startServer(dir, { port, ...(fault ? { fault } : {}) });
      port = server.port;
      const legacyUrl = new URL('/legacy/', server.origin).href;
      const send = () => legacyUpload(legacyUrl, { token: TOKEN, filename, bytes });
      const first = send().then(
        (r) => r,
        (err: unknown) => err,
      );
      if (fault) await injectedKill(server, where);
      else {
        await sleep(int(random, 0, 30));
        await killNow(server);
      }
      const answered = await first;
      server = await startServer(dir, { port, reap: true });
      await checkInvariants(dir, server, seen, where);

      // Published whole, or not at all; the same upload again is answered accordingly.
      const page = await fetch(`${server.origin}/simple/demo-pkg/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
      const listed =
        page.status === 200 && ((await page.json()) as { files: { filename: string }[] }).files.some((f) => f.filename === filename);
      if (kind === 'store:publishFile:1:after') expect(listed, `${where}: the publish had committed`).toBe(true);
      if (kind !== 'store:publishFile:1:after' && kind !== 'external') expect(listed, `${where}: nothing was published`).toBe(false);
      const retry = await send();
      if (listed) {
        expect(retry.status, `${where}: ${retry.text}`).toBe(409);
        expect(retry.reason).toContain('File already exists');
      } else expect(retry.status, `${where}: ${retry.text}`).toBe(200);
      // A kill before the answer: the client saw no success.
      if (!listed) expect(answered instanceof Error || (answered as { status: number }).status !== 200, where).toBe(true);
      await checkInvariants(dir, server, seen, `${where}, after the retry`);
      await stopServer(server);
      tally('kill points survived');
    }
    const last = await startServer(dir, { port, reap: true });
    await checkInvariants(dir, last, seen, `legacy after ${points} kill points`);
    await stopServer(last);
  }, 180_000);
});
