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
 *
 * Every failure message says what is wrong with the mechanism, not only which value differed.
 * `mechanism-suite.test.ts` proves it: it runs this suite on deliberately broken mechanisms
 * (`broken-mechanisms/`) and checks that each fails, for its defect, with such a message.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest';
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
      if (f.status !== 202) {
        const why = f.status >= 500 ? await diagnoseInstructions() : '';
        expect(f.status, `creating a file upload session failed${why ? ` because ${why}` : ''}: ${JSON.stringify(f.body)}`).toBe(202);
      }
      return { session: s.body, file: f.body };
    }
    const complete = (file: any) => api('POST', file.links.complete, { body: { meta: META } });
    const status = async (file: any) => (await api('GET', file.links['file-upload-session'])).body;
    // `null` sends no credentials (`undefined` would fall back to the default token).
    const run = (file: any, body: Uint8Array | Readable, size: number, token: string | null = TEST_TOKENS.alice, signal?: AbortSignal) =>
      suite.client({ instructions: file.mechanism, body, size, authorization: token ? bearer(token) : undefined, ...(signal ? { signal } : {}) });
    /**
     * A refusal is the client rejecting, or completion failing into error afterwards. `defect`
     * says what is wrong when neither happens: it is the failure message.
     */
    async function expectRefusedOrError(file: any, attempt: () => Promise<void>, defect: string) {
      const refused = await attempt().then(() => false, () => true);
      if (refused) return;
      const done = await complete(file);
      expect(done.status, `${defect} (POST links.complete answered ${done.status})`).toBeGreaterThanOrEqual(400);
      const after = (await status(file)).status;
      expect(after, `${defect} (the file is ${after}, not error)`).toBe('error');
    }
    /** The client half must reject: the mechanism's route refused the request. */
    async function expectRefused(attempt: () => Promise<void>, what: string) {
      const accepted = await attempt().then(() => true, () => false);
      expect(accepted, `${what} was accepted: every route the mechanism mounts must call host.authorizeTransfer on every request, before it takes any bytes`).toBe(false);
    }
    /** The `mechanism` map the mechanism itself returns, for a diagnosis when the host refused it. */
    async function probeInstructions(): Promise<unknown> {
      const mechanism = t.server.mechanisms[0]!;
      const id = `conformance-probe-${randomBytes(8).toString('hex')}`;
      const ctx = {
        session: { id: 'conformance-probe', project: 'conformance-probe', version: '1.0' },
        file: { id, filename: 'conformance_probe-1.0.tar.gz', size: 1, hashes: { sha256: sha256(Buffer.from('x')) }, status: 'pending' as const, expiresAt: new Date(Date.now() + 3_600_000) },
        baseUrl: `${t.url}mechanisms/${identifier}`,
        stagingKey: `staging/${id}`,
      };
      try {
        return await mechanism.instructions(ctx);
      } finally {
        await mechanism.cancel?.(ctx).catch(() => undefined);
      }
    }
    /** Why the host refused the mechanism's instructions (it answers 500 for a bad map), or ''. */
    async function diagnoseInstructions(): Promise<string> {
      let map: Record<string, unknown> | undefined;
      try {
        map = (await probeInstructions()) as Record<string, unknown> | undefined;
      } catch (err) {
        return `the mechanism's instructions() threw: ${String(err)}`;
      }
      if (map?.identifier === undefined) return `instructions carry no identifier: the mechanism map must include "identifier": "${identifier}" (it returned ${JSON.stringify(map)})`;
      if (map.identifier !== identifier) return `instructions carry the identifier ${JSON.stringify(map.identifier)}, not the mechanism's own "${identifier}"`;
      return '';
    }

    it('PEP 694 Server Specific File Upload Mechanisms: the identifier follows the naming rules', () => {
      const check = checkMechanismIdentifier(identifier);
      expect(check.ok, check.ok ? '' : check.reason).toBe(true);
    });
    it('PEP 694 File Upload Session: instructions carry the identifier', async () => {
      const s = await api('POST', t.url, { body: { meta: META, name: `conformance-${++n}`, version: '1.0' } });
      expect(s.status, JSON.stringify(s.body)).toBe(201);
      const bytes = Buffer.from('x');
      const f = await api('POST', s.body.links.upload, {
        body: { meta: META, filename: `conformance_${n}-1.0.tar.gz`, size: 1, hashes: { sha256: sha256(bytes) }, mechanism: identifier },
      });
      if (f.status !== 202) {
        // The host refuses a map without the right identifier (500); ask the mechanism what it returns.
        assert.fail((await diagnoseInstructions()) || `creating a file upload session failed: ${JSON.stringify(f.body)}`);
      }
      expect(f.body.mechanism?.identifier, `instructions carry no identifier: the mechanism map must include "identifier": "${identifier}"`).toBeDefined();
      expect(f.body.mechanism.identifier, `instructions carry the identifier ${JSON.stringify(f.body.mechanism.identifier)}, not "${identifier}"`).toBe(identifier);
    });
    for (const decline of suite.declines ?? []) {
      it(`negotiate declines ${JSON.stringify(decline)} with 422`, async () => {
        const s = await api('POST', t.url, { body: { meta: META, name: `declines-${++n}`, version: '1.0' } });
        const r = await api('POST', s.body.links.upload, {
          body: { meta: META, filename: decline.filename ?? `declines_${n}-1.0.tar.gz`, size: decline.size ?? 10, hashes: { sha256: '0'.repeat(64) }, mechanism: identifier },
        });
        expect(r.status, `negotiate did not decline ${JSON.stringify(decline)}, which the mechanism is documented to decline: ${JSON.stringify(r.body)}`).toBe(422);
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
        // What the index keeps must be exactly what was sent.
        const blobs = t.server.container.resolve(BLOB_STORE);
        const id = String(file.links['file-upload-session']).split('/').pop();
        const stored = createHash('sha256');
        for await (const chunk of await blobs.read(`files/${id}`)) stored.update(chunk as Buffer);
        expect(stored.digest('hex'), 'the stored bytes differ from the uploaded ones').toBe(sha256(bytes));
        expect((await api('POST', session.links.publish, { body: { meta: META } })).status).toBe(201);
      });
    }
    it('a wrong hash ends in error', async () => {
      const bytes = randomBytes(1000);
      const { file } = await fileSession(bytes, { hashes: { sha256: sha256(Buffer.from('something else')) } });
      await expectRefusedOrError(
        file,
        () => run(file, bytes, bytes.length),
        'completion accepted bytes whose sha256 does not match the declared one: the mechanism must report the digests of the bytes it received (hashed as they arrive), never the declared ones',
      );
    });
    it('a short upload ends in a refusal or error', async () => {
      const bytes = randomBytes(1000);
      const { file } = await fileSession(bytes);
      await expectRefusedOrError(file, () => run(file, bytes.subarray(0, 999), 999), 'a short upload (999 of the declared 1000 bytes) was accepted: the mechanism must report the size it received');
    });
    it('an overlong upload ends in a refusal or error', async () => {
      const bytes = randomBytes(1001);
      const { file } = await fileSession(bytes.subarray(0, 1000));
      await expectRefusedOrError(file, () => run(file, bytes, 1001), 'an overlong upload (1001 bytes for a declared 1000) was accepted: the mechanism must stop at the declared size + 1 and refuse');
    });
    it('PEP 694 Authentication and Authorization: refuses missing credentials, a principal without permission, and another session\'s principal', async () => {
      const bytes = randomBytes(100);
      const { file } = await fileSession(bytes);
      await expectRefused(() => run(file, bytes, bytes.length, null), 'a request without credentials');
      await expectRefused(() => run(file, bytes, bytes.length, 'not-a-valid-token-000000'), 'a request with invalid credentials');
      await expectRefused(() => run(file, bytes, bytes.length, TEST_TOKENS.carol), 'a request by a principal without upload permission');
      // bob may upload to bob-* projects only: his own session's rights do not reach this one.
      await expectRefused(() => run(file, bytes, bytes.length, TEST_TOKENS.bob), "a request by another session's principal");
      // None of that left anything behind: the rightful upload works.
      await run(file, bytes, bytes.length);
      expect((await complete(file)).status).toBe(201);
    });
    it('PEP 694 Authentication and Authorization: every URL in the instructions refuses requests without credentials', async () => {
      // An empty file: a route that skips authorization would take an empty body as the whole upload.
      const { file } = await fileSession(Buffer.alloc(0));
      const urls = Object.values(file.mechanism as Record<string, unknown>).filter((v): v is string => typeof v === 'string' && v.startsWith(t.origin));
      for (const url of urls) {
        for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) {
          const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
          const res = await fetch(url, { method, ...(withBody ? { body: new Uint8Array(0), headers: { 'content-type': 'application/octet-stream' } } : {}) });
          await res.arrayBuffer();
          expect(res.status, `an unauthenticated ${method} ${url} was answered ${res.status}: every route the mechanism mounts must call host.authorizeTransfer on every request`).toBeGreaterThanOrEqual(400);
        }
      }
      expect((await status(file)).status).toBe('pending');
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
