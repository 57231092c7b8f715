/**
 * The conformance checks of the PEP 694 flow through the author's client half: identifier and
 * instructions, declines, whole uploads, and what the lifecycle methods report (rules 6 to 8 on
 * `UploadMechanism`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { assert, expect, it } from 'vitest';
import { checkMechanismIdentifier } from '@pep694/core';
import { api, META, TEST_TOKENS } from '../harness.js';
import { sha256, slowStream, type SuiteContext } from './context.js';

export function flowChecks(c: SuiteContext): void {
  it('PEP 694 Server Specific File Upload Mechanisms: the identifier follows the naming rules', () => {
    const check = checkMechanismIdentifier(c.identifier);
    expect(check.ok, check.ok ? '' : check.reason).toBe(true);
  });
  it('PEP 694 File Upload Session: instructions carry the identifier', async () => {
    const name = c.project();
    const s = await api('POST', c.t.url, { body: { meta: META, name, version: '1.0' } });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const f = await c.createFile(s.body, `${name.replace(/-/g, '_')}-1.0.tar.gz`, 1, { sha256: sha256(Buffer.from('x')) });
    if (f.status !== 202) {
      // The host refuses a map without the right identifier (500); ask the mechanism what it returns.
      assert.fail((await c.diagnoseInstructions()) || `creating a file upload session failed: ${JSON.stringify(f.body)}`);
    }
    expect(
      f.body.mechanism?.identifier,
      `instructions carry no identifier: the mechanism map must include "identifier": "${c.identifier}"`,
    ).toBeDefined();
    expect(
      f.body.mechanism.identifier,
      `instructions carry the identifier ${JSON.stringify(f.body.mechanism.identifier)}, not "${c.identifier}"`,
    ).toBe(c.identifier);
  });
  for (const decline of c.suite.declines ?? []) {
    it(`negotiate declines ${JSON.stringify(decline)} with 422`, async () => {
      const name = c.project('declines');
      const s = await api('POST', c.t.url, { body: { meta: META, name, version: '1.0' } });
      const r = await c.createFile(s.body, decline.filename ?? `${name.replace(/-/g, '_')}-1.0.tar.gz`, decline.size ?? 10, {
        sha256: '0'.repeat(64),
      });
      expect(
        r.status,
        `negotiate did not decline ${JSON.stringify(decline)}, which the mechanism is documented to decline: ${JSON.stringify(r.body)}`,
      ).toBe(422);
      expect(r.body.code).toBe('mechanism-declined');
    });
  }
  for (const [label, size] of [
    ['an empty file', 0],
    ['a 1-byte file', 1],
    ['a multi-megabyte file', c.suite.largeSize ?? 5 * 1024 ** 2],
  ] as const) {
    it(`uploads, completes, verifies and publishes ${label}`, async () => {
      const bytes = randomBytes(size);
      const { session, file, id } = await c.fileSession(bytes);
      await c.run(file, bytes, bytes.length);
      const done = await c.complete(file);
      expect([201, 202], JSON.stringify(done.body)).toContain(done.status);
      expect(await c.settled(file)).toBe('completed');
      // What the index keeps must be exactly what was sent.
      const stored = createHash('sha256');
      for await (const chunk of await c.blobs.read(`files/${id}`)) stored.update(chunk as Buffer);
      expect(stored.digest('hex'), 'the stored bytes differ from the uploaded ones').toBe(sha256(bytes));
      expect((await api('POST', session.links.publish, { body: { meta: META } })).status).toBe(201);
    });
  }
  it('rule 6: a wrong hash ends in error', async () => {
    const bytes = randomBytes(1000);
    const { file } = await c.fileSession(bytes, { hashes: { sha256: sha256(Buffer.from('something else')) } });
    await c.expectRefusedOrError(
      file,
      () => c.run(file, bytes, bytes.length),
      'completion accepted bytes whose sha256 does not match the declared one: the mechanism must report the digests of the bytes it received (hashed as they arrive), never the declared ones',
    );
  });
  it('rule 6: a short upload ends in a refusal or error', async () => {
    const bytes = randomBytes(1000);
    const { file } = await c.fileSession(bytes);
    await c.expectRefusedOrError(
      file,
      () => c.run(file, bytes.subarray(0, 999), 999),
      'a short upload (999 of the declared 1000 bytes) was accepted: the mechanism must report the size it received',
    );
  });
  it('rule 6: an overlong upload ends in a refusal or error', async () => {
    const bytes = randomBytes(1001);
    const { file } = await c.fileSession(bytes.subarray(0, 1000));
    await c.expectRefusedOrError(
      file,
      () => c.run(file, bytes, 1001),
      'an overlong upload (1001 bytes for a declared 1000) was accepted: the mechanism must stop at the declared size + 1 and refuse',
    );
  });
  it('rule 7: status never regresses during a transfer', async () => {
    const bytes = randomBytes(1024 ** 2);
    const { file } = await c.fileSession(bytes);
    const seen: number[] = [];
    let done = false;
    const poller = (async () => {
      while (!done) {
        const meta = (await c.status(file)).meta ?? {};
        const received = Object.values(meta).find((v: any) => v && typeof v === 'object' && 'bytes-received' in v) as any;
        if (received) seen.push(received['bytes-received']);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await c.run(file, slowStream(bytes, 64 * 1024, 3), bytes.length);
    done = true;
    await poller;
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]!, `rule 7: bytes-received went from ${seen[i - 1]} down to ${seen[i]} during one transfer`).toBeGreaterThanOrEqual(
        seen[i - 1]!,
      );
    expect((await c.complete(file)).status).toBe(201);
  });
  it('rule 8: cancel mid-transfer purges the data', async () => {
    const bytes = randomBytes(2 * 1024 ** 2);
    const { file, id } = await c.fileSession(bytes);
    const controller = new AbortController();
    let deleted = false;
    const stream = slowStream(bytes, 64 * 1024, 5, (sent) => {
      if (sent >= 512 * 1024 && !deleted) {
        deleted = true;
        void api('DELETE', file.links['file-upload-session']);
      }
    });
    await c.run(file, stream, bytes.length, { signal: controller.signal }).catch(() => undefined);
    controller.abort();
    for (let i = 0; i < 50 && (await c.status(file)).status !== 'canceled'; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await c.status(file)).status).toBe('canceled');
    await new Promise((r) => setTimeout(r, 200));
    expect(await c.blobs.size(`staging/${id}`), 'rule 8: the staged bytes of a canceled file are still there').toBeUndefined();
    expect(await c.blobs.size(`files/${id}`)).toBeUndefined();
  });
  it('rule 8: expiry cleans up', async () => {
    const bytes = randomBytes(1000);
    const { file, id } = await c.fileSession(bytes);
    await c.run(file, bytes, bytes.length);
    const clock = (c.t as typeof c.t & { clock: { offset: number } }).clock;
    clock.offset += 3601 * 1000;
    try {
      await c.t.server.reap();
    } finally {
      clock.offset -= 3601 * 1000;
    }
    expect((await c.status(file)).status).toBe('canceled');
    expect(await c.blobs.size(`staging/${id}`), 'rule 8: the staged bytes of an expired file are still there').toBeUndefined();
  });
  it("rule 1: refuses missing credentials, a principal without permission, and another session's principal (PEP 694 Authentication and Authorization)", async () => {
    const bytes = randomBytes(100);
    const { file } = await c.fileSession(bytes);
    await c.expectRefused(() => c.run(file, bytes, bytes.length, { token: null }), 'a request without credentials');
    await c.expectRefused(
      () => c.run(file, bytes, bytes.length, { token: 'not-a-valid-token-000000' }),
      'a request with invalid credentials',
    );
    await c.expectRefused(
      () => c.run(file, bytes, bytes.length, { token: TEST_TOKENS.carol }),
      'a request by a principal without upload permission',
    );
    // bob may upload to bob-* projects only: his own session's rights do not reach this one.
    await c.expectRefused(() => c.run(file, bytes, bytes.length, { token: TEST_TOKENS.bob }), "a request by another session's principal");
    // None of that left anything behind: the rightful upload works.
    await c.run(file, bytes, bytes.length);
    expect((await c.complete(file)).status).toBe(201);
  });
}
