/**
 * End to end: the real host (`startTestServer`: SQLite and blobs in a temp dir, loopback HTTP)
 * with the http-post-bytes and multipart mechanisms and this verifier, given a Sigstore instance
 * made in the test as its trust root and a trusted publishers file beside the tokens file.
 *
 * PEP 740 "Upload endpoint changes": "If the index fails to verify any attestation in
 * `attestations`, it MUST reject the upload." index-hosted-attestations "Provenance objects" and
 * the simple repository API (1.3): the provenance is served, linked as `provenance` (JSON) and
 * `data-provenance` (HTML), in the published index and in the stage preview.
 * The legacy upload API (`/legacy/`) is on another branch; it calls the same `acceptAttestations`.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { BLOB_STORE, SESSION_STORE, StoredAttestations, type Attestation, type Provenance } from '@pep694/core';
import { api, startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import { uploadHttpPostBytes, HttpPostBytesError } from '@pep694/mechanism-http-post-bytes/client';
import multipart from '@pep694/mechanism-multipart';
import { uploadMultipart, MultipartUploadError } from '@pep694/mechanism-multipart/client';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { attestationToBundle } from './bundle.js';
import { SigstoreAttestationVerifier } from './verifier.js';
import { TrustedPublishersFile } from './trusted-publishers-file.js';
import type { TrustedPublishersInput } from './trusted-publishers.js';
import { githubIdentity, gitlabIdentity, TestSigstore } from './testing/index.js';

const META = { 'api-version': '2.0' };
const DIST = '/work/shared/fixtures/dist';
const SDIST = 'demo_pkg-1.0.0.tar.gz';
const MULTIPART = 'vnd-test-multipart';
const JSON_SIMPLE = 'application/vnd.pypi.simple.v1+json';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fixture = (name: string) => readFileSync(join(DIST, name));
const ALICE = `Bearer ${TEST_TOKENS.alice}`;
const gh = githubIdentity({ repository: 'octo/demo', workflow: 'release.yml' });
const gl = gitlabIdentity({ repository: 'group/demo', workflow_filepath: '.gitlab-ci.yml' });

const PUBLISHERS: TrustedPublishersInput = {
  projects: {
    'demo-pkg': [
      { kind: 'GitHub', repository: 'octo/demo', workflow: 'release.yml', environment: 'pypi' },
      { kind: 'GitLab', repository: 'group/demo', workflow_filepath: '.gitlab-ci.yml' },
    ],
  },
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
  // The verifier exists before the server (it is composed into it), so its file is written first
  // into a directory of its own; the test server's tokens file is in the server's data directory.
  const dir = mkdtempSync(join(tmpdir(), 'pep694-publishers-'));
  publishersPath = join(dir, 'trusted-publishers.json');
  writePublishers(PUBLISHERS);
  const verifier = new SigstoreAttestationVerifier({
    publishers: new TrustedPublishersFile(publishersPath),
    trustedRoot: sigstore.trustedRoot,
  });
  t = await startTestServer({
    config: { index: {} },
    attestationVerifier: verifier,
    mechanisms: [
      { plugin: httpPostBytes, options: {} },
      { plugin: multipart, options: { operator: 'test' } },
    ],
  });
});
afterAll(async () => {
  await t?.close();
});

interface FileSession {
  links: Record<string, string>;
  mechanism: Record<string, string>;
}
async function session(version = '1.0.0') {
  const res = await api('POST', t.url, { body: { meta: META, name: 'demo-pkg', version } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { links: Record<string, string> };
}
async function createFile(
  s: { links: Record<string, string> },
  filename: string,
  bytes: Uint8Array,
  mechanism: string,
): Promise<FileSession> {
  const res = await api('POST', s.links['upload']!, {
    body: { meta: META, filename, size: bytes.length, hashes: { sha256: sha256(bytes) }, mechanism },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body as FileSession;
}
const complete = (f: FileSession) => api('POST', f.links['complete']!, { body: { meta: META } });
const cancel = async (s: { links: Record<string, string> }) => expect((await api('DELETE', s.links['session']!)).status).toBeLessThan(300);

/** Uploads through a mechanism's client half; resolves with the problem document on refusal. */
async function upload(
  mechanism: 'http-post-bytes' | typeof MULTIPART,
  f: FileSession,
  bytes: Buffer,
  attestations: unknown[],
  filename: string,
) {
  try {
    if (mechanism === 'http-post-bytes') {
      await uploadHttpPostBytes({ instructions: f.mechanism, body: bytes, authorization: ALICE, attestations });
    } else {
      await uploadMultipart({ instructions: f.mechanism, body: bytes, filename, authorization: ALICE, attestations });
    }
    return undefined;
  } catch (err) {
    if (err instanceof HttpPostBytesError || err instanceof MultipartUploadError) return err.problem as Record<string, unknown>;
    throw err;
  }
}

/** Verifies a provenance as an installer would: sigstore-js against the trust root, the identity, the file's digest. */
function verifyAsInstaller(provenance: Provenance, filename: string, bytes: Uint8Array): string[] {
  const verifier = new Verifier(toTrustMaterial(sigstore.trustedRoot));
  const verified: string[] = [];
  for (const bundle of provenance.attestation_bundles) {
    const publisher = bundle.publisher as unknown as { kind: string; repository: string };
    for (const attestation of bundle.attestations) {
      const signer = verifier.verify(toSignedEntity(attestationToBundle(attestation)), {
        subjectAlternativeName: publisher.kind === 'GitHub' ? gh.san : gl.san,
        extensions: { issuer: publisher.kind === 'GitHub' ? gh.claims.issuer! : gl.claims.issuer! },
      });
      expect(signer.identity?.subjectAlternativeName).toBeDefined();
      const statement = JSON.parse(Buffer.from(attestation.envelope.statement, 'base64').toString()) as {
        subject: { name: string; digest: { sha256: string } }[];
      };
      expect(statement.subject).toEqual([{ name: filename, digest: { sha256: sha256(bytes) } }]);
      verified.push(`${publisher.kind}:${publisher.repository}`);
    }
  }
  return verified;
}

describe.each(['http-post-bytes', MULTIPART] as const)('attestations through %s', (mechanism) => {
  const version = mechanism === 'http-post-bytes' ? '1.0.0' : '1.0.1';
  const wheel = `demo_pkg-${version}-py3-none-any.whl`;

  it('a valid attestation is accepted, served in the stage and the published index, and verifies as an installer checks it', async () => {
    const bytes = fixture(wheel);
    const s = await session(version);
    const f = await createFile(s, wheel, bytes, mechanism);
    const attestations = [
      await sigstore.attest({ filename: wheel, sha256: sha256(bytes), identity: gh }),
      await sigstore.attest({ filename: wheel, sha256: sha256(bytes), identity: gl, predicateType: 'https://slsa.dev/provenance/v1' }),
    ];
    expect(await upload(mechanism, f, bytes, attestations, wheel)).toBeUndefined();
    expect((await complete(f)).status).toBe(201);

    // The stage preview: JSON `provenance`, HTML `data-provenance`, and the object behind them.
    const stage = `${s.links['stage']!}demo-pkg/`;
    const stagePage = (await (await fetch(stage, { headers: { accept: JSON_SIMPLE } })).json()) as {
      meta: Record<string, string>;
      files: { filename: string; provenance: string | null }[];
    };
    expect(stagePage.meta['api-version']).toBe('1.3');
    const staged = stagePage.files.find((x) => x.filename === wheel)!;
    expect(staged.provenance).toBe(`../integrity/demo-pkg/${version}/${wheel}/provenance`);
    const stageHtml = await (await fetch(stage, { headers: { accept: 'text/html' } })).text();
    expect(stageHtml).toContain(`data-provenance="../integrity/demo-pkg/${version}/${wheel}/provenance"`);
    const stagedProvenance = (await (await fetch(new URL(staged.provenance!, stage))).json()) as Provenance;
    expect(verifyAsInstaller(stagedProvenance, wheel, bytes)).toEqual(['GitHub:octo/demo', 'GitLab:group/demo']);

    expect((await api('POST', s.links['publish']!, { body: { meta: META } })).status).toBe(201);
    const index = new URL('/simple/demo-pkg/', t.origin);
    const page = (await (await fetch(index, { headers: { accept: JSON_SIMPLE } })).json()) as {
      files: { filename: string; provenance: string | null; url: string }[];
    };
    const listed = page.files.find((x) => x.filename === wheel)!;
    expect(listed.provenance).not.toBeNull();
    const provenanceUrl = new URL(listed.provenance!, index);
    const provenance = (await (await fetch(provenanceUrl)).json()) as Provenance;
    // The installer downloads the file from the index and checks the provenance against it.
    const downloaded = new Uint8Array(await (await fetch(new URL(listed.url, index))).arrayBuffer());
    expect(verifyAsInstaller(provenance, wheel, downloaded)).toEqual(['GitHub:octo/demo', 'GitLab:group/demo']);
    expect(provenance.attestation_bundles.map((b) => b.publisher)).toEqual([
      {
        kind: 'GitHub',
        repository: 'octo/demo',
        workflow: 'release.yml',
        environment: 'pypi',
        claims: { ref: 'refs/tags/v1.0', sha: 'a'.repeat(40) },
      },
      {
        kind: 'GitLab',
        repository: 'group/demo',
        workflow_filepath: '.gitlab-ci.yml',
        environment: null,
        claims: { ref: 'refs/heads/main', sha: 'b'.repeat(40) },
      },
    ]);
    // PyPI's Integrity API URL serves the same object.
    const integrity = await fetch(new URL(`/integrity/demo-pkg/${version}/${wheel}/provenance`, t.origin));
    expect(integrity.status).toBe(200);
    expect(await integrity.json()).toEqual(provenance);
  });

  it.each([
    ['a bad signature', 'attestation-unverified', 'signature'],
    ['a statement for another file', 'invalid-attestations', 'statement'],
    ['a statement for another digest', 'invalid-attestations', 'statement'],
    ['an identity of another repository', 'attestation-untrusted-publisher', 'trusted-publisher'],
    ['an identity of another workflow', 'attestation-untrusted-publisher', 'trusted-publisher'],
    ['a certificate not chaining to the trust root', 'attestation-unverified', 'certificate'],
    ['a log entry outside the certificate validity', 'attestation-unverified', 'signing-time'],
  ])('%s is rejected (%s, check %s); nothing is kept', async (what, code, check) => {
    const filename = `demo_pkg-${version}.tar.gz`;
    const bytes = fixture(filename);
    const digest = sha256(bytes);
    const s = await session(version);
    const f = await createFile(s, filename, bytes, mechanism);
    let a: Attestation;
    switch (what) {
      case 'a bad signature': {
        const good = await sigstore.attest({ filename, sha256: digest, identity: gh });
        const other = await sigstore.attest({ filename, sha256: digest, identity: gh });
        a = { ...good, envelope: { ...good.envelope, signature: other.envelope.signature } };
        break;
      }
      case 'a statement for another file':
        a = await sigstore.attest({ filename: wheel, sha256: digest, identity: gh });
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
      case 'a certificate not chaining to the trust root':
        a = await sigstore.attest({ filename, sha256: digest, identity: gh, issuer: await TestSigstore.create('rogue') });
        break;
      default:
        a = await sigstore.attest({ filename, sha256: digest, identity: gh, notBefore: new Date(Date.now() - 7_200_000) });
    }
    onTestFinished(() => cancel(s));
    const problem = await upload(mechanism, f, bytes, [a], filename);
    expect(problem, 'the upload was accepted').toBeDefined();
    expect(problem).toMatchObject({ status: 400, code, check });
    // Nothing kept: no attestations beside the file, and none in its record once completed.
    const id = f.links['file-upload-session']!.split('/').pop()!;
    expect(await new StoredAttestations(t.server.container.resolve(BLOB_STORE)).load(id)).toBeUndefined();
    await complete(f);
    expect((await t.server.container.resolve(SESSION_STORE).getFile(id))?.attestations ?? null).toBeNull();
  });
});

describe('trusted publishers', () => {
  it('a project with no trusted publisher rejects attestations; the file is re-read on change', async () => {
    const bytes = fixture(SDIST);
    const attest = () => sigstore.attest({ filename: SDIST, sha256: sha256(bytes), identity: gh });
    writePublishers({ projects: { 'another-project': PUBLISHERS.projects['demo-pkg']! } });
    let s = await session('1.0.0');
    try {
      const f = await createFile(s, SDIST, bytes, 'http-post-bytes');
      expect(await upload('http-post-bytes', f, bytes, [await attest()], SDIST)).toMatchObject({
        code: 'attestation-untrusted-publisher',
        check: 'no-trusted-publisher',
      });
    } finally {
      writePublishers(PUBLISHERS);
      await cancel(s);
    }
    s = await session('1.0.0');
    const f = await createFile(s, SDIST, bytes, 'http-post-bytes');
    expect(await upload('http-post-bytes', f, bytes, [await attest()], SDIST)).toBeUndefined();
    await cancel(s);
  });
});
