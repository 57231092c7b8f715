/**
 * Fuzzed forms to the legacy upload API (issue #16): property-based twine forms whose fields
 * (`:action`, `protocol_version`, `name`, `version`, `filetype`, the digests, `attestations`, extra
 * fields), file name and bytes are drawn at random, some valid and most not. Every answer is 200
 * for a form that is right, or a 4xx with its message in the reason phrase; never a 5xx; and what
 * /simple/ lists is exactly the uploads that got 200. Bounded and seeded.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyUpload, tally, twineFields, type TestServer } from '../testing/index.js';
import { startServer, TEST_TOKENS } from './helpers.js';

let t: TestServer;
let cases = 0;
const accepted = new Set<string>();
beforeAll(async () => {
  t = await startServer({ config: { index: {}, legacy: {}, limits: { maxFileSize: 64 * 1024 } } });
});
afterAll(async () => {
  tally('fuzz cases', cases);
  await t.close();
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', '\u0000', '../x', 'a'.repeat(300), '1.0', 'file_upload', 'sdist', 'bdist_wheel', 'fuzz-pkg'),
);
/** A field's value: its right one (from twine's fields), dropped, or junk. */
const variant = (right: string) => fc.oneof({ weight: 3, arbitrary: fc.constant<string | undefined>(right) }, fc.constant(undefined), junk);

describe('PEP 694 Legacy API: fuzzed forms', () => {
  it('each form gets 200 or a 4xx with a reason, never a 5xx; /simple/ lists exactly what got 200', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          wheel: fc.boolean(),
          bytes: fc.uint8Array({ minLength: 0, maxLength: 2048 }),
          wrongName: fc.boolean(),
          action: variant('file_upload'),
          protocol: variant('1'),
          filetype: fc.option(junk, { nil: undefined, freq: 2 }),
          digest: fc.oneof(
            { weight: 3, arbitrary: fc.constant('right') },
            fc.constant('none'),
            fc.constant('wrong'),
            fc.constant('md5-only'),
          ),
          attestations: fc.option(junk, { nil: undefined, freq: 2 }),
          extra: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 50 }), { maxKeys: 5 }),
          filename: fc.option(junk, { nil: undefined, freq: 2 }),
        }),
        async (c) => {
          const version = `1.${++n}`;
          const good = `fuzz_pkg-${version}${c.wheel ? '-py3-none-any.whl' : '.tar.gz'}`;
          const filename = c.filename ?? (c.wrongName ? good.replace('fuzz_pkg', 'Fuzz.Pkg') : good);
          const right = twineFields(good, c.bytes);
          const fields: Record<string, string | undefined> = {
            ...Object.fromEntries(Object.entries(c.extra).filter(([k]) => !(k in right) && k !== 'content' && k !== 'attestations')),
            ':action': c.action,
            protocol_version: c.protocol,
            ...(c.filetype === undefined ? {} : { filetype: c.filetype }),
            ...(c.attestations === undefined ? {} : { attestations: c.attestations }),
            ...(c.digest === 'none' ? { sha256_digest: undefined, md5_digest: undefined } : {}),
            ...(c.digest === 'wrong' ? { sha256_digest: sha256(Buffer.from('other')) } : {}),
            ...(c.digest === 'md5-only' ? { sha256_digest: undefined } : {}),
          };
          const res = await legacyUpload(`${t.origin}/legacy/`, { token: TEST_TOKENS.alice, filename, bytes: c.bytes, fields });
          expect(res.status, `${res.status} ${res.reason}: ${res.text}`).toBeLessThan(500);
          if (res.status === 200) accepted.add(filename);
          else {
            expect(res.status).toBeGreaterThanOrEqual(400);
            expect(res.reason.length, 'the message is in the reason phrase').toBeGreaterThan(10);
            expect(res.reason).toMatch(/^[\x20-\x7e]+$/);
          }
          cases++;
        },
      ),
      { numRuns: 150, seed: 1694 },
    );
    const page = await fetch(`${t.origin}/simple/fuzz-pkg/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    const listed = page.status === 200 ? ((await page.json()) as { files: { filename: string }[] }).files.map((f) => f.filename) : [];
    expect(listed.sort()).toEqual([...accepted].sort());
    expect(accepted.size, 'some fuzzed forms are right and get through').toBeGreaterThan(0);
  }, 120_000);
});
