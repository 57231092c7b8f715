/**
 * The PEP 740 front door, fuzzed: attestation bodies that get past the shape checks and reach the
 * Sigstore verifier (bundle conversion, certificate parsing, the DSSE signature, the log entries,
 * the trust root, the publisher match), sent to http-post-bytes' `attestations_url` and in the
 * multipart `attestations` field. Each is a real signed attestation from a Sigstore instance made
 * for the run (given to the process as its trust root, with a trusted publisher for the projects
 * here), then mutated at one place: a field replaced by an arbitrary JSON value (fast-check,
 * seeded), a DER certificate truncated or bit-flipped, a log entry's body re-encoded wrong. Each
 * must be answered (400, or 204 for a mutation that changes nothing verified), never with a 5xx.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { githubIdentity, TestSigstore } from '@pep694/attestations-sigstore/testing';
import type { Attestation } from '@pep694/core';
import { HANDLED, headers, int, problem, randomBytes, sha256, status, type FrontDoor, type HostileGenerator } from './door.js';
import type { HostileRequest } from './exchange.js';

const PROJECTS = { hpb: 'hostile-att-hpb', multipart: 'hostile-att-mp' } as const;
const IDENTITY = githubIdentity({ repository: 'hostile/attest', workflow: 'release.yml' });
/** Mutated attestations per mechanism. */
const FUZZ_CASES = 60;

let instance: Promise<TestSigstore> | undefined;
/** The run's Sigstore instance (one per process, shared by the setup and the generators). */
export const hostileSigstore = (): Promise<TestSigstore> => (instance ??= TestSigstore.create('hostile sigstore'));

/**
 * Writes the trust root and the trusted publishers (beside the tokens file, where the reference
 * index looks by default) into `dir`; returns the environment the process needs.
 */
export async function attestationEnvironment(dir: string): Promise<Record<string, string>> {
  const root = join(dir, 'trusted_root.json');
  writeFileSync(root, JSON.stringify((await hostileSigstore()).trustedRootJSON));
  const publisher = { kind: 'GitHub', repository: 'hostile/attest', workflow: 'release.yml' };
  writeFileSync(
    join(dir, 'trusted-publishers.json'),
    JSON.stringify({ projects: { [PROJECTS.hpb]: [publisher], [PROJECTS.multipart]: [publisher] } }),
  );
  return { PEP694_SIGSTORE_TRUSTED_ROOT: root };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Places a mutation may hit (JSON paths into the attestation object). */
const PATHS: readonly (readonly (string | number)[])[] = [
  ['verification_material'],
  ['verification_material', 'certificate'],
  ['verification_material', 'transparency_entries'],
  ['verification_material', 'transparency_entries', 0],
  ['verification_material', 'transparency_entries', 0, 'logIndex'],
  ['verification_material', 'transparency_entries', 0, 'logId'],
  ['verification_material', 'transparency_entries', 0, 'logId', 'keyId'],
  ['verification_material', 'transparency_entries', 0, 'kindVersion'],
  ['verification_material', 'transparency_entries', 0, 'kindVersion', 'kind'],
  ['verification_material', 'transparency_entries', 0, 'kindVersion', 'version'],
  ['verification_material', 'transparency_entries', 0, 'integratedTime'],
  ['verification_material', 'transparency_entries', 0, 'inclusionPromise'],
  ['verification_material', 'transparency_entries', 0, 'inclusionPromise', 'signedEntryTimestamp'],
  ['verification_material', 'transparency_entries', 0, 'inclusionProof'],
  ['verification_material', 'transparency_entries', 0, 'inclusionProof', 'logIndex'],
  ['verification_material', 'transparency_entries', 0, 'inclusionProof', 'treeSize'],
  ['verification_material', 'transparency_entries', 0, 'inclusionProof', 'rootHash'],
  ['verification_material', 'transparency_entries', 0, 'inclusionProof', 'hashes'],
  ['verification_material', 'transparency_entries', 0, 'inclusionProof', 'checkpoint', 'envelope'],
  ['verification_material', 'transparency_entries', 0, 'canonicalizedBody'],
  ['envelope', 'signature'],
  ['envelope', 'statement'],
];

/** Values that break parsers in particular: big and negative numbers, times, near-base64. */
const NASTY: readonly Json[] = [
  '',
  '0',
  '-1',
  '18446744073709551616',
  '1e309',
  'NaN',
  -1,
  1e308,
  Number.MAX_SAFE_INTEGER,
  '====',
  'AAAA',
  '\u2014 rekor.test AAAA\n',
  'rekor.test - 1\n1\nAAAA\n\n\u2014 rekor.test AAAAAAA=\n',
  [],
  {},
  [null],
  { keyId: 1 },
  Buffer.from('{"kind":"dsse","apiVersion":"0.0.1","spec":{}}').toString('base64'),
  Buffer.from('{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{"signature":{}}}').toString('base64'),
  Buffer.from('{"kind":"intoto","apiVersion":"0.0.2","spec":{"content":{}}}').toString('base64'),
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

/** The certificate's DER cut at a random point, or with one bit flipped. */
function brokenCertificate(a: Attestation, random: () => number): Json {
  const der = Buffer.from(a.verification_material.certificate, 'base64');
  if (random() < 0.5) return der.subarray(0, int(random, 1, der.length - 1)).toString('base64');
  const i = int(random, 0, der.length - 1);
  der[i] = der[i]! ^ (1 << int(random, 0, 7));
  return der.toString('base64');
}

/** The mutated attestations of a run: field replacements, broken certificates, nasty values. */
async function mutations(filename: string, digest: string, random: () => number, seed: number): Promise<{ name: string; body: Json }[]> {
  const sigstore = await hostileSigstore();
  const valid = (await sigstore.attest({ filename, sha256: digest, identity: IDENTITY })) as unknown as Json;
  const arbitrary = fc.sample(fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, { numRuns: FUZZ_CASES, seed });
  const out: { name: string; body: Json }[] = [];
  for (let i = 0; i < FUZZ_CASES; i++) {
    const path = PATHS[int(random, 0, PATHS.length - 1)]!;
    const where = path.join('.');
    const pick = random();
    if (pick < 0.15) {
      out.push({
        name: `certificate DER broken (#${i})`,
        body: setAt(valid, ['verification_material', 'certificate'], brokenCertificate(valid as unknown as Attestation, random)),
      });
    } else if (pick < 0.5) {
      out.push({ name: `${where} = a nasty value (#${i})`, body: setAt(valid, path, NASTY[int(random, 0, NASTY.length - 1)]!) });
    } else {
      out.push({ name: `${where} = arbitrary JSON (#${i})`, body: setAt(valid, path, arbitrary[i]!) });
    }
  }
  return out;
}

const jsonHeaders = (auth: string) => headers({ Authorization: auth, 'Content-Type': 'application/json' });

const viaHttpPostBytes: HostileGenerator = async (ctx) => {
  const s = await ctx.session(PROJECTS.hpb);
  const bytes = randomBytes(ctx.random, 64);
  const filename = 'hostile_att_hpb-1.0-py3-none-any.whl';
  const f = await ctx.file(s, filename, bytes, 'http-post-bytes');
  const url = f.mechanism['attestations_url']!;
  const post = (name: string, body: Json, expect: HostileRequest['expect']): HostileRequest => ({
    name: `attestations: ${name}`,
    method: 'POST',
    url,
    headers: jsonHeaders(ctx.auth),
    body: Buffer.from(JSON.stringify([body])),
    ...(expect ? { expect } : {}),
  });
  const sigstore = await hostileSigstore();
  const digest = sha256(bytes);
  const valid = await sigstore.attest({ filename, sha256: digest, identity: IDENTITY });
  const stranger = await sigstore.attest({
    filename,
    sha256: digest,
    identity: githubIdentity({ repository: 'mallory/attest', workflow: 'release.yml' }),
  });
  return [
    // The run's trust root and publisher are the process's: a real attestation is taken.
    post('a valid attestation', valid as unknown as Json, status(204)),
    post('signed by another repository', stranger as unknown as Json, problem(400, 'attestation-untrusted-publisher')),
    ...(await mutations(filename, digest, ctx.random, ctx.seed)).map((m) => post(m.name, m.body, { status: HANDLED })),
  ];
};

const CRLF = '\r\n';
const BOUNDARY = 'hostile-attestations-boundary';

const viaMultipart: HostileGenerator = async (ctx) => {
  const s = await ctx.session(PROJECTS.multipart);
  const bytes = randomBytes(ctx.random, 64);
  const filename = 'hostile_att_mp-1.0-py3-none-any.whl';
  const f = await ctx.file(s, filename, bytes, 'vnd-pep694-multipart');
  const form = (attestations: Json) =>
    Buffer.concat([
      Buffer.from(
        `--${BOUNDARY}${CRLF}Content-Disposition: form-data; name="attestations"${CRLF}${CRLF}${JSON.stringify([attestations])}${CRLF}`,
      ),
      Buffer.from(
        `--${BOUNDARY}${CRLF}Content-Disposition: form-data; name="content"; filename="${filename}"${CRLF}Content-Type: application/octet-stream${CRLF}${CRLF}`,
      ),
      bytes,
      Buffer.from(`${CRLF}--${BOUNDARY}--${CRLF}`),
    ]);
  const post = (name: string, body: Json, expect: HostileRequest['expect']): HostileRequest => ({
    name: `attestations field: ${name}`,
    method: 'POST',
    url: f.mechanism['file_url']!,
    headers: headers({ Authorization: ctx.auth, 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` }),
    body: form(body),
    ...(expect ? { expect } : {}),
  });
  const digest = sha256(bytes);
  const valid = await (await hostileSigstore()).attest({ filename, sha256: digest, identity: IDENTITY });
  return [
    post('a valid attestation', valid as unknown as Json, status(204)),
    ...(await mutations(filename, digest, ctx.random, ctx.seed + 1)).map((m) => post(m.name, m.body, { status: HANDLED })),
  ];
};

export const attestations: FrontDoor = { name: 'attestations (PEP 740, Sigstore)', generators: [viaHttpPostBytes, viaMultipart] };
