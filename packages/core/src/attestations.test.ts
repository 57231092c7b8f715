/** PEP 740 "Attestation objects": the shape checks and the statement's subject checks. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateAttestations } from './attestations.js';
import { ProblemError } from './problem.js';

const FILE = { filename: 'demo_pkg-1.0.0-py3-none-any.whl', hashes: { sha256: 'ab'.repeat(32) } };
const base64 = (bytes: string | Uint8Array) => Buffer.from(bytes).toString('base64');
/** An in-toto v1 Statement about FILE (core cannot use `@pep694/server/testing`'s `attestation`: it sits below it). */
const statement = (over: Record<string, unknown> = {}) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: FILE.filename, digest: { sha256: FILE.hashes.sha256 } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: {},
  ...over,
});
/** An attestation object whose envelope carries `s` (a statement, or raw text). */
const withStatement = (s: unknown): Record<string, any> => ({
  version: 1,
  verification_material: {
    certificate: base64(randomBytes(64)),
    transparency_entries: [{ log_index: 1, log_id: 'x', entry_kind: 'dsse' }],
  },
  envelope: { statement: base64(typeof s === 'string' ? s : JSON.stringify(s)), signature: base64(randomBytes(70)) },
});
const PUBLISH = { predicateType: 'https://docs.pypi.org/attestations/publish/v1' };
const good = () => withStatement(statement(PUBLISH));
const about = (sha256: string) => withStatement(statement({ ...PUBLISH, subject: [{ name: FILE.filename, digest: { sha256 } }] }));

function problems(body: unknown): { source: string; message: string }[] {
  try {
    validateAttestations(body, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    expect((err as ProblemError).code).toBe('invalid-attestations');
    expect((err as ProblemError).status).toBe(400);
    return [...(err as ProblemError).errors];
  }
  throw new Error('expected the attestations to be refused');
}

describe('PEP 740 Attestation objects', () => {
  it('accepts well-formed objects and keeps additional keys ("applications or signers may include additional keys")', () => {
    const a: Record<string, any> = { ...good(), extra: true };
    a['verification_material']['rfc3161_timestamps'] = ['AAAA'];
    expect(validateAttestations([a, good()], FILE)).toEqual([a, expect.any(Object)]);
  });

  it('matches the subject name by parsing it: an equivalent spelling is this file (index-hosted-attestations "Attestation verification")', () => {
    const named = (name: string) => withStatement(statement({ ...PUBLISH, subject: [{ name, digest: { sha256: FILE.hashes.sha256 } }] }));
    for (const name of ['Demo_Pkg-1.0.0-py3-none-any.whl', 'demo_pkg-1.0-py3-none-any.whl', 'demo.pkg-1.0.0-PY3-none-any.whl']) {
      expect(validateAttestations([named(name)], FILE), name).toHaveLength(1);
    }
    for (const name of [
      'demo_pkg-1.0.1-py3-none-any.whl',
      'demo_pkg-1.0.0-1-py3-none-any.whl',
      'demo_pkg-1.0.0-py2-none-any.whl',
      'not a file name',
    ]) {
      expect(() => validateAttestations([named(name)], FILE), name).toThrow(/not the file name/);
    }
  });

  it('accepts an uppercase declared digest and no declared sha256 at all', () => {
    const a = about('AB'.repeat(32));
    expect(validateAttestations([a], FILE)).toHaveLength(1);
    expect(validateAttestations([about('cd'.repeat(32))], { filename: FILE.filename, hashes: { blake2b: 'x' } })).toHaveLength(1);
  });

  it.each([
    ['an object instead of an array', {}, '/'],
    ['an empty array ("one or more items")', [], '/'],
    ['a non-object item', [1], '/0'],
  ])('refuses %s', (_what, body, source) => {
    expect(problems(body)[0]!.source).toBe(source);
  });

  it.each([
    ['version 2', (a: any) => (a.version = 2), '/0/version'],
    ['a missing version', (a: any) => delete a.version, '/0/version'],
    ['missing verification_material', (a: any) => delete a.verification_material, '/0/verification_material'],
    ['a non-string certificate', (a: any) => (a.verification_material.certificate = 5), '/0/verification_material/certificate'],
    ['a non-base64 certificate', (a: any) => (a.verification_material.certificate = 'a b'), '/0/verification_material/certificate'],
    ['an empty certificate', (a: any) => (a.verification_material.certificate = ''), '/0/verification_material/certificate'],
    [
      'transparency_entries not an array',
      (a: any) => (a.verification_material.transparency_entries = {}),
      '/0/verification_material/transparency_entries',
    ],
    [
      'a transparency entry not an object',
      (a: any) => (a.verification_material.transparency_entries = ['x']),
      '/0/verification_material/transparency_entries/0',
    ],
    ['missing envelope', (a: any) => delete a.envelope, '/0/envelope'],
    ['unpadded base64 signature', (a: any) => (a.envelope.signature = 'YWJjZA'), '/0/envelope/signature'],
    ['url-safe base64 signature', (a: any) => (a.envelope.signature = 'ab-_'), '/0/envelope/signature'],
  ])('refuses %s, naming the field', (_what, mutate, source) => {
    const a = good();
    mutate(a);
    expect(problems([a]).map((e) => e.source)).toContain(source);
  });

  it.each([
    ['not JSON', 'not json', 'JSON in-toto Statement'],
    ['a JSON array', [], 'JSON object'],
    ['another _type', statement({ _type: 'https://in-toto.io/Statement/v0.1' }), '_type'],
    ['an unsupported predicateType', statement({ predicateType: 'https://example.com/x' }), 'predicateType'],
    [
      'two subjects',
      statement({ subject: [{ name: FILE.filename, digest: { sha256: FILE.hashes.sha256 } }, { name: 'b' }] }),
      'exactly one subject',
    ],
    [
      'another file',
      statement({ subject: [{ name: 'demo_pkg-1.0.0.tar.gz', digest: { sha256: FILE.hashes.sha256 } }] }),
      'not the file name',
    ],
    ['no sha256', statement({ subject: [{ name: FILE.filename, digest: { sha512: 'ab' } }] }), 'hex sha256'],
    ['another digest', statement({ subject: [{ name: FILE.filename, digest: { sha256: 'cd'.repeat(32) } }] }), 'declared sha256'],
  ])('refuses a statement that is %s', (_what, s, message) => {
    const [first] = problems([good(), withStatement(s)]);
    expect(first).toMatchObject({ source: '/1/envelope/statement', message: expect.stringContaining(message) });
  });

  it('lists every problem at once, with a detail naming the only one when there is one', () => {
    const a = good() as any;
    a.version = 3;
    a.envelope.signature = '!';
    expect(
      problems([a])
        .map((e) => e.source)
        .sort(),
    ).toEqual(['/0/envelope/signature', '/0/version']);
    try {
      validateAttestations([{ ...good(), version: 0 }], FILE);
    } catch (err) {
      expect((err as ProblemError).detail).toMatch(/^The attestations are invalid at \/0\/version: /);
    }
  });
});
