/**
 * The conformance checks of the rules a mechanism's routes follow (rules 1 to 5 on
 * `UploadMechanism`). The suite knows the routes' URLs (from the instructions) but not their
 * protocol, so it probes them with requests every route must refuse, and watches the client
 * half's own requests through a proxy (rule 2) and the blob store (rules 4 and 5).
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { SESSION_STORE } from '@pep694/core';
import { TEST_TOKENS } from '../harness.js';
import { bearer, sha256, type SuiteContext } from './context.js';
import { startContinueProxy } from './continue-proxy.js';
import { PROBE_HEADER, probeDrain, probeExpect, watchDrain } from './probes.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const BODY_METHODS = ['POST', 'PUT', 'PATCH'] as const;
/** How long a probe waits for an answer the route owes at once. */
const WAIT_MS = 10_000;

export function routeChecks(c: SuiteContext): void {
  it('rule 1: every URL in the instructions refuses requests without credentials, without permission, or for an unknown file', async () => {
    // An empty file: a route that skips authorization would take an empty body as the whole upload.
    const { file, id } = await c.fileSession(Buffer.alloc(0));
    const callers = [
      ['an unauthenticated', {}],
      ['a forbidden (no upload permission)', { authorization: bearer(TEST_TOKENS.carol) }],
    ] as const;
    for (const url of c.instructionUrls(file)) {
      const unknown = url.replace(id, randomBytes(16).toString('base64url'));
      const targets = [
        ...callers.map(([who, headers]) => [who, url, headers] as const),
        ...(unknown !== url ? [['an authorized but unknown-file', unknown, { authorization: bearer(TEST_TOKENS.alice) }] as const] : []),
      ];
      for (const [who, target, headers] of targets) {
        for (const method of METHODS) {
          const withBody = (BODY_METHODS as readonly string[]).includes(method);
          const res = await fetch(target, {
            method,
            headers: { ...headers, ...(withBody ? { 'content-type': 'application/octet-stream' } : {}) },
            ...(withBody ? { body: new Uint8Array(0) } : {}),
          });
          await res.arrayBuffer();
          expect(
            res.status,
            `rule 1: ${who} ${method} ${target} was answered ${res.status}: every route the mechanism mounts must call host.authorizeTransfer on every request`,
          ).toBeGreaterThanOrEqual(400);
        }
      }
    }
    expect((await c.status(file)).status).toBe('pending');
  });

  it('rule 2: a request refused for its credentials is never sent 100 Continue', async () => {
    const { file } = await c.fileSession(randomBytes(1000));
    for (const url of c.instructionUrls(file)) {
      for (const [who, headers] of [
        ['an unauthenticated', {}],
        ['a forbidden', { authorization: bearer(TEST_TOKENS.carol) }],
      ] as const) {
        for (const method of BODY_METHODS) {
          const probe = await probeExpect(url, method, headers, 64 * 1024, WAIT_MS);
          expect(
            probe.continued,
            `rule 2: ${who} ${method} ${url} with Expect: 100-continue was sent 100 Continue: invite the body (inviteBody) only after host.authorizeTransfer and your own checks passed`,
          ).toBe(false);
          expect(
            probe.error,
            `rule 2: ${who} ${method} ${url} with Expect: 100-continue got ${probe.error}: refuse it (refuse() answers at once)`,
          ).toBeUndefined();
          expect(probe.status).toBeGreaterThanOrEqual(400);
        }
      }
    }
  });

  it('rule 2: an authorized body sent with Expect: 100-continue is invited, and the upload succeeds', async () => {
    const bytes = randomBytes(64 * 1024);
    const { file } = await c.fileSession(bytes);
    const origin = new URL(c.t.origin);
    const proxy = await startContinueProxy({ host: origin.hostname, port: Number(origin.port) }, WAIT_MS);
    let failure: unknown;
    try {
      await c.run(file, bytes, bytes.length, { agent: proxy.agent }).catch((err: unknown) => (failure = err));
    } finally {
      await proxy.close();
    }
    expect(
      proxy.requests.length,
      "the client half sent no request through the `agent` it was given: pass it to node's http.request (the `agent` option), so that the suite can check rule 2",
    ).toBeGreaterThan(0);
    const stalled = proxy.requests.filter((r) => r.outcome === 'stalled').map((r) => `${r.method} ${r.path}`);
    expect(
      stalled,
      `rule 2: the route waited for a body it never invited (${WAIT_MS / 1000} s with Expect: 100-continue and no 100 Continue nor answer): the host sends no automatic 100 Continue; call inviteBody(req, res) once the request is authorized and checked`,
    ).toEqual([]);
    expect(failure, `the upload through Expect: 100-continue failed: ${String(failure)}`).toBeUndefined();
    expect((await c.complete(file)).status).toBe(201);
  });

  it("rule 3: a refused request's body is drained: the client gets the answer and the connection carries the next request", async () => {
    // Declared 1000 bytes; each probe sends 256 KiB chunked, so the route must refuse it, whether
    // by its headers or after reading some of it.
    const { file } = await c.fileSession(randomBytes(1000));
    for (const url of c.instructionUrls(file)) {
      for (const method of BODY_METHODS) {
        const id = randomBytes(8).toString('hex');
        const watch = watchDrain(c.t.http, id, 2000, WAIT_MS);
        const { first, second } = await probeDrain(
          url,
          method,
          { authorization: bearer(TEST_TOKENS.alice), [PROBE_HEADER]: id },
          256 * 1024,
          WAIT_MS,
        );
        const { drained } = await watch;
        expect(
          first.error,
          `rule 3: ${method} ${url} with a body the route cannot take got no answer (${first.error}): answer refusals with refuse() from @pep694/core/node-http, never by destroying the request`,
        ).toBeUndefined();
        expect(
          drained,
          `rule 3: ${method} ${url} was answered ${first.status} and its 256 KiB body was left unread (the request destroyed, or the reading stopped): a client still sending may lose the answer to a reset; answer refusals with refuse() from @pep694/core/node-http, which reads the rest within a budget`,
        ).toBe(true);
        expect(
          second.error,
          `rule 3: after ${method} ${url} was answered ${first.status}, the next request on that connection got no answer (${second.error}): the route left the refused body unread; answer refusals with refuse() (it reads the rest, or closes the connection)`,
        ).toBeUndefined();
      }
    }
  });

  it('rule 4: the bytes are written only under the staging key', async () => {
    const bytes = randomBytes(64 * 1024);
    const { file, id } = await c.fileSession(bytes);
    const stop = c.blobs.record();
    let written: string[];
    try {
      await c.run(file, bytes, bytes.length);
      expect([201, 202]).toContain((await c.complete(file)).status);
      expect(await c.settled(file)).toBe('completed');
    } finally {
      written = stop();
    }
    const own = new Set([`staging/${id}`, `files/${id}`, `attestations/${id}`]);
    const outside = [...new Set(written)].filter((key) => !own.has(key));
    expect(
      outside,
      `rule 4: the mechanism wrote ${outside.join(', ')} in the blob store: the file's bytes go to host.blobs.stage(ctx.stagingKey) (here staging/${id}), and nothing else of the mechanism's but StoredAttestations`,
    ).toEqual([]);
  });

  it('rule 5: cancel undoes instructions() when the host cannot store the file upload session', async () => {
    const bytes = randomBytes(100);
    const { session, file, filename } = await c.fileSession(bytes);
    // The same filename again while the first is pending: the host calls instructions(), cannot
    // store the row (409 file-exists), and calls cancel() with the same context.
    const stop = c.blobs.record();
    const again = await c.createFile(session, filename, bytes.length, { sha256: sha256(bytes) });
    const touched = [...new Set(stop())];
    expect(again.status, JSON.stringify(again.body)).toBe(409);
    const left: string[] = [];
    for (const key of touched) if ((await c.blobs.size(key)) !== undefined) left.push(key);
    expect(
      left,
      `rule 5: instructions() for a file upload session the host could not store left ${left.join(', ')} in the blob store after cancel()`,
    ).toEqual([]);
    const sweep = c.mechanism.sweep?.bind(c.mechanism);
    if (sweep) {
      const store = c.t.server.container.resolve(SESSION_STORE);
      const removed = await sweep(async (fileId) => (await store.getFile(fileId)) !== undefined);
      expect(
        removed,
        `rule 5: cancel() did not undo what instructions() prepared for a file upload session whose row was never stored: sweep() then found ${removed} thing(s) of files the host does not know`,
      ).toBe(0);
    }
    // The file that was stored is unharmed.
    await c.run(file, bytes, bytes.length);
    expect((await c.complete(file)).status).toBe(201);
  });
}
