/**
 * The mechanism conformance suite: one call from a mechanism package's own vitest file.
 *
 * ```ts
 * import { mechanismConformance } from '@pep694/server/testing';
 * mechanismConformance({ plugin, options: { operator: 'acme' }, client: myClientHalf });
 * ```
 *
 * It starts a real host (loopback HTTP, a real SQLite file) with the mechanism registered and
 * drives the whole PEP 694 flow through the author's client half. It lives beside the host, not
 * in core, because it needs one; core stays free of servers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_STORE, checkMechanismIdentifier, type MechanismMap, type MechanismPlugin } from '@pep694/core';
import { api, META, startTestServer, TEST_TOKENS, type TestServer } from './harness.js';

/** Executes a mechanism's instructions for the given bytes; rejects when the server refuses. */
export type ClientHalf = (args: {
  readonly instructions: MechanismMap;
  /** The bytes, as a buffer or as a stream of exactly `size` bytes. */
  readonly body: Uint8Array | Readable;
  readonly size: number;
  /** The Authorization header value, or undefined to send none. */
  readonly authorization: string | undefined;
  readonly signal?: AbortSignal;
}) => Promise<void>;

export interface MechanismConformanceOptions<O> {
  readonly plugin: MechanismPlugin<O>;
  readonly options?: unknown;
  readonly client: ClientHalf;
  /** Offers the mechanism is documented to decline, e.g. `[{ size: 10 * 2 ** 30 }]`. */
  readonly declines?: readonly { readonly size?: number; readonly filename?: string }[];
  /** Size of the "multi-megabyte" file; default 5 MiB. */
  readonly largeSize?: number;
  /** Overrides of the host config, e.g. file size limits. */
  readonly config?: Parameters<typeof startTestServer>[0] extends infer T ? (T extends { config?: infer C } ? C : never) : never;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bearer = (token: string) => `Bearer ${token}`;

/** A stream of `bytes` that pauses between chunks, so a test can act mid-transfer. */
function slowStream(bytes: Uint8Array, chunk: number, delayMs: number, onChunk?: (sent: number) => void): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes.length) {
        this.push(null);
        return;
      }
      setTimeout(() => {
        const next = bytes.subarray(sent, sent + chunk);
        sent += next.length;
        onChunk?.(sent);
        this.push(next);
      }, delayMs);
    },
  });
}

export function mechanismConformance<O>(suite: MechanismConformanceOptions<O>): void {
  describe(`mechanism conformance: ${suite.plugin.name}`, () => {
    let t: TestServer;
    let identifier: string;
    let n = 0;
    beforeAll(async () => {
      const clock = { offset: 0, now: () => new Date(Date.now() + clock.offset) };
      t = await startTestServer({ mechanisms: [{ plugin: suite.plugin, options: suite.options }], clock, config: { fileTtl: 3600, ...suite.config } });
      (t as TestServer & { clock?: typeof clock }).clock = clock;
      identifier = t.server.mechanisms[0]!.identifier;
    });
    afterAll(async () => t?.close());

    /** A fresh session (a new project each time, so tests stay independent) and a file session. */
    async function fileSession(bytes: Uint8Array, opts: { hashes?: Record<string, string>; size?: number } = {}) {
      const project = `conformance-${++n}`;
      const s = await api('POST', t.url, { body: { meta: META, name: project, version: '1.0' } });
      expect(s.status, JSON.stringify(s.body)).toBe(201);
      const f = await api('POST', s.body.links.upload, {
        body: { meta: META, filename: `conformance_${n}-1.0.tar.gz`, size: opts.size ?? bytes.length, hashes: opts.hashes ?? { sha256: sha256(bytes) }, mechanism: identifier },
      });
      expect(f.status, JSON.stringify(f.body)).toBe(202);
      return { session: s.body, file: f.body };
    }
    const complete = (file: any) => api('POST', file.links.complete, { body: { meta: META } });
    const status = async (file: any) => (await api('GET', file.links['file-upload-session'])).body;
    // `null` sends no credentials (`undefined` would fall back to the default token).
    const run = (file: any, body: Uint8Array | Readable, size: number, token: string | null = TEST_TOKENS.alice, signal?: AbortSignal) =>
      suite.client({ instructions: file.mechanism, body, size, authorization: token ? bearer(token) : undefined, ...(signal ? { signal } : {}) });
    /** A refusal is the client rejecting, or completion failing into error afterwards. */
    async function expectRefusedOrError(file: any, attempt: () => Promise<void>) {
      const refused = await attempt().then(() => false, () => true);
      if (refused) return;
      const done = await complete(file);
      expect(done.status, 'completion after a bad transfer must fail').toBeGreaterThanOrEqual(400);
      expect((await status(file)).status).toBe('error');
    }

    it('PEP 694 Server Specific File Upload Mechanisms: the identifier follows the naming rules', () => {
      const check = checkMechanismIdentifier(identifier);
      expect(check.ok, check.ok ? '' : check.reason).toBe(true);
    });
    it('PEP 694 File Upload Session: instructions carry the identifier', async () => {
      const { file } = await fileSession(Buffer.from('x'));
      expect(file.mechanism.identifier).toBe(identifier);
    });
    for (const decline of suite.declines ?? []) {
      it(`negotiate declines ${JSON.stringify(decline)} with 422`, async () => {
        const s = await api('POST', t.url, { body: { meta: META, name: `declines-${++n}`, version: '1.0' } });
        const r = await api('POST', s.body.links.upload, {
          body: { meta: META, filename: decline.filename ?? `declines_${n}-1.0.tar.gz`, size: decline.size ?? 10, hashes: { sha256: '0'.repeat(64) }, mechanism: identifier },
        });
        expect(r.status).toBe(422);
        expect(r.body.code).toBe('mechanism-declined');
      });
    }
    for (const [label, size] of [['an empty file', 0], ['a 1-byte file', 1], ['a multi-megabyte file', suite.largeSize ?? 5 * 1024 ** 2]] as const) {
      it(`uploads, completes, verifies and publishes ${label}`, async () => {
        const bytes = randomBytes(size);
        const { session, file } = await fileSession(bytes);
        await run(file, bytes, bytes.length);
        const done = await complete(file);
        expect([201, 202], JSON.stringify(done.body)).toContain(done.status);
        for (let i = 0; i < 100 && (await status(file)).status === 'processing'; i++) await new Promise((r) => setTimeout(r, 50));
        expect((await status(file)).status).toBe('completed');
        expect((await api('POST', session.links.publish, { body: { meta: META } })).status).toBe(201);
      });
    }
    it('a wrong hash ends in error', async () => {
      const bytes = randomBytes(1000);
      const { file } = await fileSession(bytes, { hashes: { sha256: sha256(Buffer.from('something else')) } });
      await expectRefusedOrError(file, () => run(file, bytes, bytes.length));
    });
    it('a short upload ends in a refusal or error', async () => {
      const bytes = randomBytes(1000);
      const { file } = await fileSession(bytes);
      await expectRefusedOrError(file, () => run(file, bytes.subarray(0, 999), 999));
    });
    it('an overlong upload ends in a refusal or error', async () => {
      const bytes = randomBytes(1001);
      const { file } = await fileSession(bytes.subarray(0, 1000));
      await expectRefusedOrError(file, () => run(file, bytes, 1001));
    });
    it('PEP 694 Authentication and Authorization: refuses missing credentials, a principal without permission, and another session\'s principal', async () => {
      const bytes = randomBytes(100);
      const { file } = await fileSession(bytes);
      await expect(run(file, bytes, bytes.length, null), 'no credentials').rejects.toThrow();
      await expect(run(file, bytes, bytes.length, 'not-a-valid-token-000000'), 'bad credentials').rejects.toThrow();
      await expect(run(file, bytes, bytes.length, TEST_TOKENS.carol), 'no permission').rejects.toThrow();
      // bob may upload to bob-* projects only: his own session's rights do not reach this one.
      await expect(run(file, bytes, bytes.length, TEST_TOKENS.bob), "another session's principal").rejects.toThrow();
      // None of that left anything behind: the rightful upload works.
      await run(file, bytes, bytes.length);
      expect((await complete(file)).status).toBe(201);
    });
    it('cancel mid-transfer purges the data', async () => {
      const bytes = randomBytes(2 * 1024 ** 2);
      const { file } = await fileSession(bytes);
      const controller = new AbortController();
      let deleted = false;
      const transfer = run(
        file,
        slowStream(bytes, 64 * 1024, 5, (sent) => {
          if (sent >= 512 * 1024 && !deleted) {
            deleted = true;
            void api('DELETE', file.links['file-upload-session']);
          }
        }),
        bytes.length,
        TEST_TOKENS.alice,
        controller.signal,
      ).catch(() => undefined);
      await transfer;
      controller.abort();
      for (let i = 0; i < 50 && (await status(file)).status !== 'canceled'; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await status(file)).status).toBe('canceled');
      await new Promise((r) => setTimeout(r, 200));
      const blobs = t.server.container.resolve(BLOB_STORE);
      const id = String(file.links['file-upload-session']).split('/').pop();
      expect(await blobs.size(`staging/${id}`)).toBeUndefined();
      expect(await blobs.size(`files/${id}`)).toBeUndefined();
    });
    it('status never regresses during a transfer', async () => {
      const bytes = randomBytes(1024 ** 2);
      const { file } = await fileSession(bytes);
      const seen: number[] = [];
      let done = false;
      const poller = (async () => {
        while (!done) {
          const meta = (await status(file)).meta ?? {};
          const received = Object.values(meta).find((v: any) => v && typeof v === 'object' && 'bytes-received' in v) as any;
          if (received) seen.push(received['bytes-received']);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await run(file, slowStream(bytes, 64 * 1024, 3), bytes.length);
      done = true;
      await poller;
      for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
      expect((await complete(file)).status).toBe(201);
    });
    it('expiry cleans up', async () => {
      const bytes = randomBytes(1000);
      const { file } = await fileSession(bytes);
      await run(file, bytes, bytes.length);
      const clock = (t as TestServer & { clock: { offset: number } }).clock;
      clock.offset += 3601 * 1000;
      try {
        await t.server.reap();
      } finally {
        clock.offset -= 3601 * 1000;
      }
      expect((await status(file)).status).toBe('canceled');
      const blobs = t.server.container.resolve(BLOB_STORE);
      const id = String(file.links['file-upload-session']).split('/').pop();
      expect(await blobs.size(`staging/${id}`)).toBeUndefined();
    });
  });
}
