/**
 * The Sigstore verifier against a Sigstore instance made in the test (its own CA, log and CT log,
 * given to the verifier as an operator gives a private trust root). Nothing inside the verifier is
 * replaced: every rejection comes from a real check of a real signature, certificate or log entry.
 * PEP 740 "Upload endpoint changes": "If the index fails to verify any attestation in
 * `attestations`, it MUST reject the upload"; index-hosted-attestations "Attestation verification".
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { acceptAttestations, ProblemError, provenanceOf, type Attestation } from '@pep694/core';
import { SigstoreAttestationVerifier } from './verifier.js';
import { StaticTrustedPublishers } from './trusted-publishers.js';
import { githubIdentity, gitlabIdentity, TestSigstore } from './testing/index.js';

const filename = 'demo_pkg-1.0-py3-none-any.whl';
const sha256 = createHash('sha256').update('the wheel').digest('hex');
const file = { project: 'demo-pkg', filename, hashes: { sha256 } };
const gh = githubIdentity({ repository: 'octo/demo', workflow: 'release.yml' });
const gl = gitlabIdentity({ repository: 'group/sub/demo', workflow_filepath: 'ci/release.yml' });

const publishers = new StaticTrustedPublishers({
  projects: {
    Demo_Pkg: [
      { kind: 'GitHub', repository: 'octo/demo', workflow: 'release.yml', environment: 'pypi' },
      { kind: 'GitLab', repository: 'group/sub/demo', workflow_filepath: 'ci/release.yml' },
    ],
  },
});

let sigstore: TestSigstore;
let verifier: SigstoreAttestationVerifier;
beforeAll(async () => {
  sigstore = await TestSigstore.create();
  verifier = new SigstoreAttestationVerifier({ publishers, trustedRoot: sigstore.trustedRoot });
});

/** The problem `acceptAttestations` rejects with. */
async function rejection(attestations: unknown[], f = file): Promise<ProblemError> {
  const err = await acceptAttestations(attestations, f, verifier).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!ProblemError.is(err)) throw new Error(`expected a problem, got ${String(err)}`);
  return err;
}
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('SigstoreAttestationVerifier', () => {
  it('accepts GitHub- and GitLab-signed attestations and bundles them by publisher', async () => {
    const a = await sigstore.attest({ filename, sha256, identity: gh });
    const b = await sigstore.attest({ filename, sha256, identity: gl, predicateType: 'https://slsa.dev/provenance/v1' });
    const c = await sigstore.attest({ filename, sha256, identity: gh });
    const bundles = await acceptAttestations([a, b, c], file, verifier);
    expect(provenanceOf(bundles)).toEqual({
      version: 1,
      attestation_bundles: [
        {
          publisher: {
            kind: 'GitHub',
            repository: 'octo/demo',
            workflow: 'release.yml',
            environment: 'pypi',
            claims: { ref: 'refs/tags/v1.0', sha: 'a'.repeat(40) },
          },
          attestations: [a, c],
        },
        {
          publisher: {
            kind: 'GitLab',
            repository: 'group/sub/demo',
            workflow_filepath: 'ci/release.yml',
            environment: null,
            claims: { ref: 'refs/heads/main', sha: 'b'.repeat(40) },
          },
          attestations: [b],
        },
      ],
    });
  });

  it('rejects a bad signature (check: signature)', async () => {
    const a = await sigstore.attest({ filename, sha256, identity: gh });
    const other = await sigstore.attest({ filename, sha256, identity: gh });
    // Another key's signature over the same statement.
    const err = await rejection([{ ...a, envelope: { ...a.envelope, signature: other.envelope.signature } }]);
    expect(err.code).toBe('attestation-unverified');
    expect(err.extensions).toMatchObject({ check: 'signature', index: 0 });
  });

  it('rejects a statement swapped after signing (check: signature)', async () => {
    const a = await sigstore.attest({ filename, sha256, identity: gh });
    const statement = JSON.parse(Buffer.from(a.envelope.statement, 'base64').toString()) as Record<string, unknown>;
    const swapped = b64(JSON.stringify({ ...statement, predicateType: 'https://slsa.dev/provenance/v1' }));
    const err = await rejection([{ ...a, envelope: { ...a.envelope, statement: swapped } }]);
    expect(err.extensions).toMatchObject({ check: 'signature' });
  });

  it('rejects a statement about another file or digest (check: statement), even when well signed', async () => {
    const otherFile = await sigstore.attest({ filename: 'demo_pkg-1.0.tar.gz', sha256, identity: gh });
    const otherDigest = await sigstore.attest({ filename, sha256: 'f'.repeat(64), identity: gh });
    for (const a of [otherFile, otherDigest]) {
      const err = await rejection([a]);
      expect(err.code).toBe('invalid-attestations');
      expect(err.extensions).toMatchObject({ check: 'statement' });
    }
  });

  it('rejects an identity of another repository or workflow (check: trusted-publisher)', async () => {
    const identities = [
      githubIdentity({ repository: 'evil/demo', workflow: 'release.yml' }),
      githubIdentity({ repository: 'octo/demo', workflow: 'other.yml' }),
      githubIdentity({ repository: 'octo/demo-fork', workflow: 'release.yml' }),
      gitlabIdentity({ repository: 'group/sub/demo', workflow_filepath: '.gitlab-ci.yml' }),
      // The right repository and workflow names on another forge.
      githubIdentity({ repository: 'octo/demo', workflow: 'release.yml', host: 'https://github.example' }),
    ];
    for (const identity of identities) {
      const err = await rejection([await sigstore.attest({ filename, sha256, identity })]);
      expect(err.code, identity.san).toBe('attestation-untrusted-publisher');
      expect(err.extensions).toMatchObject({ check: 'trusted-publisher' });
      expect(err.detail).toContain(identity.san);
    }
  });

  it('rejects a certificate that does not chain to the trust root (check: certificate)', async () => {
    const rogue = await TestSigstore.create('rogue ca');
    // Issued by another CA, logged in the trusted log: only the chain is wrong.
    const err = await rejection([await sigstore.attest({ filename, sha256, identity: gh, issuer: rogue })]);
    expect(err.code).toBe('attestation-unverified');
    expect(err.extensions).toMatchObject({ check: 'certificate' });
  });

  it('rejects a log entry from a log the trust root does not name (check: transparency-log)', async () => {
    const rogue = await TestSigstore.create('rogue log');
    const err = await rejection([await rogue.attest({ filename, sha256, identity: gh, issuer: sigstore })]);
    expect(err.extensions).toMatchObject({ check: 'transparency-log' });
  });

  it('rejects a log entry outside the certificate validity (check: signing-time)', async () => {
    const notBefore = new Date(Date.now() - 3_600_000);
    const late = await sigstore.attest({ filename, sha256, identity: gh, notBefore, integratedTime: new Date() });
    const err = await rejection([late]);
    expect(err.code).toBe('attestation-unverified');
    expect(err.extensions).toMatchObject({ check: 'signing-time' });
    expect(err.detail).toMatch(/outside the certificate's validity/);
  });

  it('rejects every attestation for a project with no trusted publisher (check: no-trusted-publisher)', async () => {
    const a = await sigstore.attest({ filename, sha256, identity: gh });
    const err = await rejection([a], { ...file, project: 'other-project' });
    expect(err.code).toBe('attestation-untrusted-publisher');
    expect(err.extensions).toMatchObject({ check: 'no-trusted-publisher' });
  });

  it('rejects when one of several attestations fails, naming its index', async () => {
    const good = await sigstore.attest({ filename, sha256, identity: gh });
    const bad = await sigstore.attest({ filename, sha256, identity: githubIdentity({ repository: 'evil/demo', workflow: 'release.yml' }) });
    const err = await rejection([good, bad]);
    expect(err.extensions).toMatchObject({ index: 1 });
  });

  it('rejects objects that are no Sigstore bundle (check: bundle), and a file without a declared sha256', async () => {
    const a = await sigstore.attest({ filename, sha256, identity: gh });
    const garbage: Attestation = { ...a, verification_material: { certificate: b64('not a certificate'), transparency_entries: [{}] } };
    expect((await rejection([garbage])).extensions).toMatchObject({ check: 'bundle' });
    const noSha = await rejection([a], { ...file, hashes: {} as { sha256: string } });
    expect(noSha.extensions).toMatchObject({ check: 'sha256-undeclared' });
  });

  it('rejects an attestation without a transparency log entry (check: transparency-log)', async () => {
    const a = await sigstore.attest({ filename, sha256, identity: gh });
    const err = await rejection([{ ...a, verification_material: { ...a.verification_material, transparency_entries: [] } }]);
    expect(err.extensions).toMatchObject({ check: 'transparency-log' });
  });

  it('trusts the Sigstore public-good root by default, offline: test-made certificates do not chain to it', async () => {
    const publicGood = new SigstoreAttestationVerifier({ publishers });
    const err = await acceptAttestations([await sigstore.attest({ filename, sha256, identity: gh })], file, publicGood).catch(
      (e: unknown) => e,
    );
    expect(ProblemError.is(err) && err.extensions).toMatchObject({ check: 'certificate' });
  });
});
