/**
 * The one entry point for attestations (PEP 740 "Upload endpoint changes"): shape and statement
 * first, then the host's verifier, whose publishers become the bundles of the provenance object
 * (index-hosted-attestations "Provenance objects"). The verifier here is a plain object: what is
 * tested is the plumbing around the port, not verification (see @pep694/attestations-sigstore).
 */
import { describe, expect, it } from 'vitest';
import { acceptAttestations, groupByPublisher, provenanceOf, type AttestationVerifier } from './attestation-verifier.js';
import { ProblemError } from './problem.js';

const sha256 = 'c'.repeat(64);
const file = { project: 'demo-pkg', filename: 'demo_pkg-1.0.tar.gz', hashes: { sha256 } };
const attestation = (n: number) => ({
  version: 1 as const,
  verification_material: { certificate: 'AAAA', transparency_entries: [{ n }] },
  envelope: {
    statement: Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: file.filename, digest: { sha256 } }],
        predicateType: 'https://docs.pypi.org/attestations/publish/v1',
      }),
    ).toString('base64'),
    signature: 'AAAA',
  },
});
const gh = { kind: 'GitHub', repository: 'octo/demo', claims: {} };
const gl = { kind: 'GitLab', repository: 'group/demo', claims: {} };

describe('acceptAttestations', () => {
  it('groups by the publisher the verifier names, in first-seen order', async () => {
    const verifier: AttestationVerifier = { verify: async (list) => list.map((_, i) => (i === 1 ? gl : gh)) };
    const [a, b, c] = [attestation(0), attestation(1), attestation(2)];
    const accepted = await acceptAttestations([a, b, c], file, verifier);
    expect(accepted).toEqual([
      { publisher: gh, attestations: [a, c] },
      { publisher: gl, attestations: [b] },
    ]);
    expect(provenanceOf(accepted)).toEqual({ version: 1, attestation_bundles: accepted });
  });

  it('checks shape and statement before the verifier is asked', async () => {
    let asked = 0;
    const verifier: AttestationVerifier = { verify: async (list) => (asked++, list.map(() => gh)) };
    const err = await acceptAttestations([{ ...attestation(0), version: 2 }], file, verifier).catch((e: unknown) => e);
    expect(ProblemError.is(err) && err.code).toBe('invalid-attestations');
    expect(asked).toBe(0);
  });

  it('requires a declared sha256 to verify against (the statement digest is checked against it)', async () => {
    const verifier: AttestationVerifier = { verify: async (list) => list.map(() => gh) };
    const err = await acceptAttestations([attestation(0)], { ...file, hashes: {} }, verifier).catch((e: unknown) => e);
    expect(ProblemError.is(err) && err.extensions).toMatchObject({ check: 'sha256-undeclared' });
  });

  it('without a verifier returns the objects as they are, and they are never provenance', async () => {
    const accepted = await acceptAttestations([attestation(0)], file, undefined);
    expect(accepted).toEqual([attestation(0)]);
    expect(provenanceOf(accepted)).toBeNull();
    expect(provenanceOf(null)).toBeNull();
    expect(provenanceOf([])).toBeNull();
  });

  it('groupByPublisher treats equal publishers as one (same JSON)', () => {
    expect(groupByPublisher([attestation(0), attestation(1)], [{ ...gh }, { ...gh }])).toHaveLength(1);
  });
});
