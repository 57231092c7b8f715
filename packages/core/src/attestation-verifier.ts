/**
 * Verifying PEP 740 attestations, and what is kept of them for serving provenance.
 *
 * PEP 740 "Upload endpoint changes": "Each attestation object MUST be verifiable by the index. If
 * the index fails to verify any attestation in `attestations`, it MUST reject the upload." Core
 * names the port, `AttestationVerifier`; the host composes an implementation (the Sigstore one is
 * `@pep694/attestations-sigstore`) and hands it to mechanisms on `MechanismHost.attestationVerifier`.
 *
 * `acceptAttestations` is the one entry point every place that takes attestations calls (the
 * http-post-bytes and multipart mechanisms, a legacy upload API): shape and statement checks
 * (`validateAttestations`), then the verifier. What it returns is what the host stores with the
 * file: the attestation bundles of PEP 740 "Provenance objects", each publisher with the
 * attestations it signed, so that serving the provenance needs no verifier and no certificate
 * parsing.
 */
import { validateAttestations, type Attestation, type AttestedFile } from './attestations.js';
import { ProblemError } from './problem.js';

/**
 * A PEP 740 publisher object ("Provenance objects"): `kind` identifies the kind of trusted
 * publisher, `claims` the context the index retained; other keys are publisher-specific
 * (`repository`, `workflow`, `environment`, as PyPI's GitHub and GitLab publishers carry).
 */
export interface AttestationPublisher {
  readonly kind: string;
  readonly claims: Readonly<Record<string, unknown>> | null;
  readonly [key: string]: unknown;
}

/** PEP 740 `AttestationBundle`: one publisher, the attestations it signed. */
export interface AttestationBundle {
  readonly publisher: AttestationPublisher;
  readonly attestations: readonly Attestation[];
}

/** PEP 740 provenance object, as served at the file's provenance URL. */
export interface Provenance {
  readonly version: 1;
  readonly attestation_bundles: readonly AttestationBundle[];
}

/** The file an attestation must be about, and the project whose trusted publishers must have signed it. */
export interface VerifiableFile extends AttestedFile {
  readonly project: string;
}

/**
 * Verifies attestation objects (already shape-checked) for `file`. Resolves with the publisher
 * that signed each one, in order; rejects with a ProblemError `attestation-unverified` or
 * `attestation-untrusted-publisher` whose `check` extension names the failed check and `index`
 * the attestation. Anything else it throws is a server fault (500).
 */
export interface AttestationVerifier {
  verify(attestations: readonly Attestation[], file: VerifiableFile): Promise<readonly AttestationPublisher[]>;
}

/** What `acceptAttestations` returns and the host stores in the file's `attestations`. */
export type AcceptedAttestations = readonly AttestationBundle[] | readonly Attestation[];

/**
 * The one entry point for attestations a client sent with a file: checks them as PEP 740 objects
 * about this file (`invalid-attestations`), then, with a verifier, verifies each and groups them by
 * publisher. Without a verifier (a host that composed none) the objects are returned as they are:
 * stored, never served as provenance. That mode exists for hosts and tests that do not verify;
 * the reference index always composes one.
 */
export async function acceptAttestations(
  body: unknown,
  file: VerifiableFile,
  verifier: AttestationVerifier | undefined,
): Promise<AcceptedAttestations> {
  const attestations = validateAttestations(body, file);
  return verifier ? verifyAttestations(attestations, file, verifier) : attestations;
}

/**
 * The verifier half of `acceptAttestations`, for a caller that already ran `validateAttestations`
 * (the multipart mechanism checks the field while the form streams, and verifies once it ended).
 */
export async function verifyAttestations(
  attestations: readonly Attestation[],
  file: VerifiableFile,
  verifier: AttestationVerifier,
): Promise<AttestationBundle[]> {
  // The statement's digest is checked against the declared sha256, and the declared hashes against
  // the bytes at completion: without a declared sha256 that chain has no middle link.
  if (file.hashes.sha256 === undefined) {
    throw new ProblemError(
      'attestation-unverified',
      'Attestations need the file sha256 declared in its hashes: the statement digest is checked against it, and it against the bytes.',
      { extensions: { check: 'sha256-undeclared' }, errors: [{ source: '/hashes/sha256', message: 'missing' }] },
    );
  }
  const publishers = await verifier.verify(attestations, file);
  if (publishers.length !== attestations.length)
    throw new Error('the attestation verifier returned a publisher count unlike the attestations');
  return groupByPublisher(attestations, publishers);
}

/** Bundles attestations whose publishers are equal (same JSON), in first-seen order. */
export function groupByPublisher(attestations: readonly Attestation[], publishers: readonly AttestationPublisher[]): AttestationBundle[] {
  const bundles = new Map<string, { publisher: AttestationPublisher; attestations: Attestation[] }>();
  attestations.forEach((attestation, i) => {
    const publisher = publishers[i] as AttestationPublisher;
    const key = JSON.stringify(publisher);
    const bundle = bundles.get(key) ?? { publisher, attestations: [] };
    bundle.attestations.push(attestation);
    bundles.set(key, bundle);
  });
  return [...bundles.values()];
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isBundle = (x: unknown): x is AttestationBundle =>
  isRecord(x) && isRecord(x['publisher']) && typeof x['publisher']['kind'] === 'string' && Array.isArray(x['attestations']);

/**
 * The provenance object of a file from what the host stored (`FileUploadRecord.attestations`), or
 * null when there is none to serve: no attestations, or only unverified ones (stored by a host
 * without a verifier, or before verification existed), which are never presented as provenance.
 */
export function provenanceOf(stored: readonly unknown[] | null | undefined): Provenance | null {
  const bundles = (stored ?? []).filter(isBundle);
  return bundles.length > 0 ? { version: 1, attestation_bundles: bundles } : null;
}
