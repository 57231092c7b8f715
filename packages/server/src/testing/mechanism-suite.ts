/**
 * The mechanism conformance suite: one call from a mechanism package's own vitest file.
 *
 * ```ts
 * import { mechanismConformance } from '@pep694/server/testing';
 * mechanismConformance({ plugin, options: { operator: 'acme' }, client: myClientHalf });
 * ```
 *
 * It starts a real host (loopback HTTP, a real SQLite file, a blob store it watches) with the
 * mechanism registered, and drives the whole PEP 694 flow through the author's client half
 * (conformance/flow-checks.ts), then checks the rules the mechanism's routes follow
 * (conformance/route-checks.ts). The rules are numbered on `UploadMechanism` in core, and every
 * check's title cites its rule. It lives beside the host, not in core, because it needs one; core
 * stays free of servers.
 *
 * Every failure message says what is wrong with the mechanism, not only which value differed.
 * `mechanism-suite.test.ts` proves it: it runs this suite on deliberately broken mechanisms
 * (`broken-mechanisms/`) and checks that each fails, for its defect, with such a message.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import type { BlobStore } from '@pep694/core';
import { FsBlobStore } from '../storage/fs-blob-store.js';
import { startTestServer, type TestServer } from './harness.js';
import { SuiteContext, type MechanismConformanceOptions } from './conformance/context.js';
import { flowChecks } from './conformance/flow-checks.js';
import { RecordingBlobStore } from './conformance/recording-blob-store.js';
import { routeChecks } from './conformance/route-checks.js';

export type { ClientHalf, MechanismConformanceOptions } from './conformance/context.js';
export { RecordingBlobStore } from './conformance/recording-blob-store.js';

export function mechanismConformance<O>(suite: MechanismConformanceOptions<O>): void {
  describe(`mechanism conformance: ${suite.plugin.name}`, () => {
    const c = new SuiteContext(suite);
    let blobDir: string | undefined;
    let releaseBlobs: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      const clock = { offset: 0, now: () => new Date(Date.now() + clock.offset) };
      let store: BlobStore;
      if (suite.blobs) {
        const given = await suite.blobs();
        store = given.store;
        releaseBlobs = () => given.close();
      } else {
        blobDir = mkdtempSync(join(tmpdir(), 'pep694-conformance-blobs-'));
        store = await FsBlobStore.open(blobDir);
      }
      c.blobs = new RecordingBlobStore(store);
      c.t = await startTestServer({
        mechanisms: [{ plugin: suite.plugin, options: suite.optionsFor ? suite.optionsFor(store) : suite.options }],
        clock,
        blobs: c.blobs,
        config: { fileTtl: 3600, ...suite.config },
      });
      (c.t as TestServer & { clock?: typeof clock }).clock = clock;
      c.identifier = c.mechanism.identifier;
    });
    afterAll(async () => {
      await c.t?.close();
      await releaseBlobs?.();
      if (blobDir) rmSync(blobDir, { recursive: true, force: true });
    });

    flowChecks(c);
    routeChecks(c);
  });
}
