/**
 * End to end through the legacy upload API (`POST /legacy/`, what twine sends; issue #19 "the same
 * for the legacy API"): the real host with `legacy` configured and this verifier, a Sigstore
 * instance made in the test as its trust root and a trusted publishers file, as in e2e.test.ts.
 *
 * PEP 740 "Upload endpoint changes": the legacy upload API takes an `attestations` form field (a
 * JSON array of attestation objects), and "If the index fails to verify any attestation in
 * `attestations`, it MUST reject the upload." Legacy clients show the reason phrase of the status
 * line (twine: `HTTPError: 400 Bad Request from <url>` then the reason), so the reason names the
 * check that failed, and nothing is published.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE, type Attestation, type Provenance } from '@pep694/core';
import { legacyUpload, startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';
import { SigstoreAttestationVerifier } from './verifier.js';
import { TrustedPublishersFile } from './trusted-publishers-file.js';
import type { TrustedPublishersInput } from './trusted-publishers.js';
import { githubIdentity, TestSigstore } from './testing/index.js';

const DIST = '/work/shared/fixtures/dist';
const JSON_SIMPLE = 'application/vnd.pypi.simple.v1+json';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fixture = (name: string) => readFileSync(join(DIST, name));
const gh = githubIdentity({ repository: 'octo/demo', workflow: 'release.yml' });
const PUBLISHERS: TrustedPublishersInput = {
  projects: { 'demo-pkg': [{ kind: 'GitHub', repository: 'octo/demo', workflow: 'release.yml', environment: 'pypi' }] },
};

let t: TestServer;
let sigstore: TestSigstore;
let publishersPath: string;
const writePublishers = (config: TrustedPublishersInput) => {
  writeFileSync(`${publishersPath}.tmp`, JSON.stringify(config));
  renameSync(`${publishersPath}.tmp`, publishersPath);
};

beforeAll(async () => {
  sigstore = await TestSigstore.create();
  publishersPath = join(mkdtempSync(join(tmpdir(), 'pep694-publishers-')), 'trusted-publishers.json');
  writePublishers(PUBLISHERS);
  const verifier = new SigstoreAttestationVerifier({
    publishers: new TrustedPublishersFile(publishersPath),
    trustedRoot: sigstore.trustedRoot,
  });
  t = await startTestServer({ config: { index: {}, legacy: {} }, attestationVerifier: verifier });
});
afterAll(async () => {
  await t?.close();
});

const legacy = (filename: string, bytes: Uint8Array, attestations: readonly Attestation[]) =>
  legacyUpload(`${t.origin}/legacy/`, {
    token: TEST_TOKENS.alice,
    filename,
    bytes,
    fields: { attestations: JSON.stringify(attestations) },
  });

async function simpleFiles(): Promise<{ filename: string; provenance: string | null; url: string }[]> {
  const res = await fetch(new URL('/simple/demo-pkg/', t.origin), { headers: { accept: JSON_SIMPLE } });
  if (res.status === 404) return [];
  return ((await res.json()) as { files: { filename: string; provenance: string | null; url: string }[] }).files;
}

/** All committed blob keys: a refused upload adds none. */
async function blobKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of t.server.container.resolve(BLOB_STORE).list('')) keys.push(key);
  return keys.sort();
}

/** Nothing published: not on the simple API, not in the store, no bytes kept. */
async function expectNotPublished(filename: string, blobsBefore: string[]) {
  expect((await simpleFiles()).map((f) => f.filename)).not.toContain(filename);
  expect(await t.server.container.resolve(SESSION_STORE).getPublishedFile('demo-pkg', filename)).toBeUndefined();
  expect(await blobKeys()).toEqual(blobsBefore);
}

describe('PEP 740 attestations through the legacy upload API', () => {
  it('a valid attestation is accepted and its provenance served on the simple API', async () => {
    const wheel = 'demo_pkg-1.0.0-py3-none-any.whl';
    const bytes = fixture(wheel);
    const attestation = await sigstore.attest({ filename: wheel, sha256: sha256(bytes), identity: gh });
    const res = await legacy(wheel, bytes, [attestation]);
    expect(res, res.reason).toMatchObject({ status: 200 });

    const index = new URL('/simple/demo-pkg/', t.origin);
    const listed = (await simpleFiles()).find((f) => f.filename === wheel)!;
    // PEP 740 / simple API 1.3: `provenance` links the file's provenance object.
    expect(listed.provenance).toMatch(new RegExp(`integrity/demo-pkg/1\\.0\\.0/${wheel.replace(/\./g, '\\.')}/provenance$`));
    const provenance = (await (await fetch(new URL(listed.provenance!, index))).json()) as Provenance;
    expect(provenance.attestation_bundles).toEqual([
      {
        publisher: {
          kind: 'GitHub',
          repository: 'octo/demo',
          workflow: 'release.yml',
          environment: 'pypi',
          claims: { ref: 'refs/tags/v1.0', sha: 'a'.repeat(40) },
        },
        attestations: [attestation],
      },
    ]);
    const html = await (await fetch(index, { headers: { accept: 'text/html' } })).text();
    expect(html).toContain(`data-provenance="`);
  });

  let refusals = 0;
  it.each([
    ['a bad signature', 'failed the signature check'],
    ['a statement for another file', 'the statement subject\'s name is "demo_pkg-1.0.0-py3-none-any.whl"'],
    ['a statement for another digest', "the statement subject's sha256"],
    ['an identity of another repository', 'failed the trusted-publisher check: the certificate names https://github.com/mallory/demo/'],
    [
      'an identity of another workflow',
      'failed the trusted-publisher check: the certificate names https://github.com/octo/demo/.github/workflows/nightly.yml',
    ],
    ['a certificate not chaining to the trust root', 'failed the certificate check'],
  ])('%s is refused with a reason naming the failed check (%s); nothing is published', async (what, check) => {
    // A release of its own per case (the host runs no artifact validator), so that one case's
    // outcome cannot decide another's.
    const filename = `demo_pkg-2.0.${refusals++}.tar.gz`;
    const bytes = fixture('demo_pkg-1.0.0.tar.gz');
    const digest = sha256(bytes);
    let a: Attestation;
    switch (what) {
      case 'a bad signature': {
        const good = await sigstore.attest({ filename, sha256: digest, identity: gh });
        const other = await sigstore.attest({ filename, sha256: digest, identity: gh });
        a = { ...good, envelope: { ...good.envelope, signature: other.envelope.signature } };
        break;
      }
      case 'a statement for another file':
        a = await sigstore.attest({ filename: 'demo_pkg-1.0.0-py3-none-any.whl', sha256: digest, identity: gh });
        break;
      case 'a statement for another digest':
        a = await sigstore.attest({ filename, sha256: sha256(Buffer.from('other bytes')), identity: gh });
        break;
      case 'an identity of another repository':
        a = await sigstore.attest({
          filename,
          sha256: digest,
          identity: githubIdentity({ repository: 'mallory/demo', workflow: 'release.yml' }),
        });
        break;
      case 'an identity of another workflow':
        a = await sigstore.attest({
          filename,
          sha256: digest,
          identity: githubIdentity({ repository: 'octo/demo', workflow: 'nightly.yml' }),
        });
        break;
      default:
        a = await sigstore.attest({ filename, sha256: digest, identity: gh, issuer: await TestSigstore.create('rogue') });
    }
    const before = await blobKeys();
    const res = await legacy(filename, bytes, [a]);
    console.log(`${what}: ${res.status} ${res.reason}`);
    expect(res.status).toBe(400);
    expect(res.reason).toMatch(/^Invalid attestations supplied during upload: /);
    expect(res.reason).toContain(check);
    await expectNotPublished(filename, before);
  });

  it('a project with no trusted publisher refuses attestations; nothing is published', async () => {
    const filename = 'demo_pkg-1.0.0.tar.gz';
    const bytes = fixture(filename);
    writePublishers({ projects: { 'another-project': PUBLISHERS.projects['demo-pkg']! } });
    try {
      const before = await blobKeys();
      const res = await legacy(filename, bytes, [await sigstore.attest({ filename, sha256: sha256(bytes), identity: gh })]);
      console.log(`no trusted publisher: ${res.status} ${res.reason}`);
      expect(res.status).toBe(400);
      expect(res.reason).toMatch(/^Invalid attestations supplied during upload: /);
      expect(res.reason).toContain('failed the no-trusted-publisher check: the project demo-pkg has no trusted publisher');
      await expectNotPublished(filename, before);
    } finally {
      writePublishers(PUBLISHERS);
    }
  });
});
