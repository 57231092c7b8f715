/**
 * Hostile attestation bodies straight at the verifier: every field of a real signed attestation
 * replaced by awkward values (and by arbitrary JSON, fast-check, seeded). Whatever comes in,
 * `acceptAttestations` resolves or rejects with a 4xx ProblemError; anything else would be a 500
 * in the host. The process-level suite (examples/reference-index hostile/attestations.ts) sends the
 * same kind of bodies over HTTP to the reference index.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { acceptAttestations, ProblemError, type Attestation } from '@pep694/core';
import { tally } from '@pep694/server/testing';
import { SigstoreAttestationVerifier } from './verifier.js';
import { StaticTrustedPublishers } from './trusted-publishers.js';
import { githubIdentity, TestSigstore } from './testing/index.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const filename = 'fuzz_pkg-1.0-py3-none-any.whl';
const sha256 = createHash('sha256').update('fuzz').digest('hex');
const file = { project: 'fuzz-pkg', filename, hashes: { sha256 } };
const identity = githubIdentity({ repository: 'octo/fuzz', workflow: 'release.yml' });

const FIELDS: readonly (readonly (string | number)[])[] = [
  ['verification_material', 'certificate'],
  ['verification_material', 'transparency_entries'],
  ['verification_material', 'transparency_entries', 0],
  ...['logIndex', 'logId', 'kindVersion', 'integratedTime', 'inclusionPromise', 'inclusionProof', 'canonicalizedBody'].map((k) => [
    'verification_material',
    'transparency_entries',
    0,
    k,
  ]),
  ['verification_material', 'transparency_entries', 0, 'logId', 'keyId'],
  ['verification_material', 'transparency_entries', 0, 'kindVersion', 'kind'],
  ['verification_material', 'transparency_entries', 0, 'inclusionPromise', 'signedEntryTimestamp'],
  ...['logIndex', 'treeSize', 'rootHash', 'hashes', 'checkpoint'].map((k) => [
    'verification_material',
    'transparency_entries',
    0,
    'inclusionProof',
    k,
  ]),
  ['verification_material', 'transparency_entries', 0, 'inclusionProof', 'checkpoint', 'envelope'],
  ['envelope', 'signature'],
  ['envelope', 'statement'],
];
const VALUES: readonly Json[] = [
  null,
  '',
  '0',
  '-1',
  '18446744073709551616',
  '1e309',
  -1,
  1.5,
  Number.MAX_SAFE_INTEGER,
  'AAAA',
  '====',
  'rekor.test - 1\n1\nAAAA\n\n\u2014 rekor.test AAAAAAA=\n',
  [],
  {},
  [null],
  Buffer.from('{"kind":"dsse","apiVersion":"0.0.1","spec":{}}').toString('base64'),
  Buffer.from('{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{"signature":{}}}').toString('base64'),
  Buffer.from('{"kind":"intoto","apiVersion":"0.0.2","spec":{"content":{}}}').toString('base64'),
  Buffer.from('not json').toString('base64'),
];

function setAt(target: Json, path: readonly (string | number)[], value: Json): Json {
  const copy = structuredClone(target);
  let node: Json = copy;
  for (const key of path.slice(0, -1)) {
    const next: Json | undefined = (node as Record<string | number, Json>)[key];
    if (next === undefined || next === null || typeof next !== 'object') return copy;
    node = next;
  }
  (node as Record<string | number, Json>)[path[path.length - 1]!] = value;
  return copy;
}

let sigstore: TestSigstore;
let verifier: SigstoreAttestationVerifier;
let valid: Json;
beforeAll(async () => {
  sigstore = await TestSigstore.create();
  verifier = new SigstoreAttestationVerifier({
    publishers: new StaticTrustedPublishers({
      projects: { 'fuzz-pkg': [{ kind: 'GitHub', repository: 'octo/fuzz', workflow: 'release.yml' }] },
    }),
    trustedRoot: sigstore.trustedRoot,
  });
  valid = (await sigstore.attest({ filename, sha256, identity })) as unknown as Json;
});

/** 'accepted', or the problem's code and check; throws when it is anything but a 4xx problem. */
async function outcome(body: Json): Promise<string> {
  try {
    await acceptAttestations([body], file, verifier);
    return 'accepted';
  } catch (err) {
    if (!ProblemError.is(err) || err.status >= 500) throw new Error(`not a 4xx problem: ${String(err)}`, { cause: err });
    return `${err.code}:${String(err.extensions['check'] ?? '')}`;
  }
}

describe('hostile attestation bodies reach the verifier and get a 4xx problem, never a fault', () => {
  it('every field replaced by each awkward value, and DER certificates cut and bit-flipped', async () => {
    const seen = new Map<string, number>();
    const count = (o: string) => seen.set(o, (seen.get(o) ?? 0) + 1);
    expect(await outcome(valid)).toBe('accepted');
    for (const path of FIELDS) for (const value of VALUES) count(await outcome(setAt(valid, path, value)));
    const der = Buffer.from((valid as unknown as Attestation).verification_material.certificate, 'base64');
    for (let cut = 1; cut < der.length; cut += 7) {
      count(await outcome(setAt(valid, ['verification_material', 'certificate'], der.subarray(0, cut).toString('base64'))));
    }
    for (let i = 0; i < der.length; i += 5) {
      const flipped = Buffer.from(der);
      flipped[i] = flipped[i]! ^ 0x01;
      count(await outcome(setAt(valid, ['verification_material', 'certificate'], flipped.toString('base64'))));
    }
    const total = [...seen.values()].reduce((a, b) => a + b, 0);
    // Every check that parses something was reached, not just the first.
    for (const check of ['bundle', 'signature', 'certificate', 'transparency-log']) {
      expect(
        [...seen.keys()].some((k) => k.endsWith(`:${check}`)),
        `${check} in ${JSON.stringify([...seen])}`,
      ).toBe(true);
    }
    tally('hostile cases', total + 1);
  });

  it('arbitrary JSON at arbitrary fields (fast-check, seeded)', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...FIELDS), fc.jsonValue({ maxDepth: 3 }), async (path, value) => {
        runs += 1;
        await outcome(setAt(valid, path, value as Json));
      }),
      { numRuns: 300, seed: 740 },
    );
    tally('hostile cases', runs);
  });
});
