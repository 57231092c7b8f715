/**
 * Extension before `expires-at` during a long upload (PEP 694 "Session Expiration": "For
 * long-running uploads, clients should extend the session … if the `links.extend` endpoint is
 * available"; "File Upload Session Extension"; "Publishing Session Extension"), against the server
 * with lifetimes of a few seconds and a reaper that runs every 200 ms: a transfer that lasts longer
 * than both lifetimes finishes only because the client extends the publishing session and the file
 * upload session while the bytes travel.
 */
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MechanismClient } from '@pep694/core/node-http';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import httpPostBytesHalf from '@pep694/mechanism-http-post-bytes/client';
import { startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';
import { readFile } from 'node:fs/promises';
import { collectReleases } from './dists.js';
import { FIXTURES } from './test-support.js';
import { uploadRelease, type UploadEvent } from './upload.js';

const SESSION_TTL = 4;
const FILE_TTL = 3;
/** The transfer: longer than both lifetimes. */
const TRANSFER_MS = 7000;

let t: TestServer;
const auth = `Bearer ${TEST_TOKENS.alice}`;

beforeAll(async () => {
  t = await startTestServer({
    mechanisms: [{ plugin: httpPostBytes, options: {} }],
    config: { sessionTtl: SESSION_TTL, fileTtl: FILE_TTL, reaperInterval: 200 },
  });
});
afterAll(async () => {
  await t.close();
});

/** The first-party http-post-bytes half, sending the file in 10 slices spread over TRANSFER_MS: a slow link. */
const slowHalf: MechanismClient = {
  ...httpPostBytesHalf,
  name: 'slow http-post-bytes',
  async upload(ctx) {
    const bytes = await readFile(ctx.body as string);
    const step = Math.ceil(bytes.length / 10);
    async function* slices() {
      for (let at = 0; at < bytes.length; at += step) {
        await new Promise((r) => setTimeout(r, TRANSFER_MS / 10));
        yield bytes.subarray(at, at + step);
      }
    }
    return httpPostBytesHalf.upload({ ...ctx, body: Readable.from(slices()), size: bytes.length });
  },
};

async function slowUpload(version: string, extendBefore: number, server: TestServer = t) {
  const [release] = await collectReleases([join(FIXTURES, `demo_pkg-${version}.tar.gz`)]);
  const events: UploadEvent[] = [];
  const run = uploadRelease({
    root: server.url,
    authorization: auth,
    release: release!,
    stage: true,
    halves: [slowHalf],
    extendBefore,
    extendFor: 60,
    onEvent: (e) => events.push(e),
  });
  return { run, events };
}

describe('a transfer longer than the session lifetimes', () => {
  it('finishes: the client extends the publishing session and the file upload session while the bytes travel', async () => {
    const { run, events } = await slowUpload('1.0.0', 2);
    const result = await run;
    expect(result.status).toBe('staged');
    expect(result.files[0]).toMatchObject({ status: 'completed', filename: 'demo_pkg-1.0.0.tar.gz' });
    const extended = events.filter((e) => e.type === 'extended');
    expect(extended.some((e) => e.type === 'extended' && e.filename === undefined)).toBe(true);
    expect(extended.some((e) => e.type === 'extended' && e.filename === 'demo_pkg-1.0.0.tar.gz')).toBe(true);
    // The server's view: the file completed, the session still open, past both original lifetimes.
    const status = await fetch(result.sessionUrl, { headers: { Authorization: auth } });
    const body = (await status.json()) as { status: string; files: Record<string, { status: string }> };
    expect(body.status).toBe('open');
    expect(body.files['demo_pkg-1.0.0.tar.gz']?.status).toBe('completed');
    await fetch(result.sessionUrl, { method: 'DELETE', headers: { Authorization: auth } });
  }, 30_000);

  it('fails without extension: the lifetimes really are shorter than the transfer', async () => {
    // A negative extendBefore: nothing ever has that little time left, so nothing is extended.
    const { run, events } = await slowUpload('1.0.1', -1e9);
    await expect(run).rejects.toThrow(/expired|not found|404|canceled/i);
    expect(events.some((e) => e.type === 'extended')).toBe(false);
  }, 30_000);
});

describe('an index that does not grant extensions', () => {
  it('is asked once for each session: a notice, no "extended" event, and the upload goes on', async () => {
    // Sessions may not outlive their first lifetime: extend answers success with the same expires-at (PEP 694).
    const strict = await startTestServer({
      mechanisms: [{ plugin: httpPostBytes, options: {} }],
      config: { sessionTtl: 60, sessionMaxLifetime: 60, fileTtl: 60 },
    });
    try {
      // Always due (3600 s before expiry): without the refusal rule it would ask again every second of the 7 s transfer.
      const { run, events } = await slowUpload('1.0.0', 3600, strict);
      const result = await run;
      expect(result.files[0]).toMatchObject({ status: 'completed' });
      expect(events.filter((e) => e.type === 'extended')).toEqual([]);
      const notices = events.flatMap((e) => (e.type === 'notice' ? [e.message] : []));
      expect(notices.filter((m) => m.startsWith('the index did not extend the session'))).toHaveLength(1);
      expect(notices.filter((m) => m.startsWith('the index did not extend the file upload session of demo_pkg-1.0.0.tar.gz'))).toHaveLength(
        1,
      );
      const metrics = await (await fetch(new URL('/metrics', strict.url))).text();
      const extendRequests = [...metrics.matchAll(/^pep694_http_requests_total\{[^}]*route="[^"]*extend"[^}]*\} (\d+)/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
      expect(extendRequests).toBe(2);
    } finally {
      await strict.close();
    }
  }, 30_000);
});
