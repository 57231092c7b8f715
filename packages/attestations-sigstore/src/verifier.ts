/**
 * The Sigstore `AttestationVerifier`: each PEP 740 attestation object, converted to the Sigstore
 * bundle it encodes, is verified with sigstore-js (`@sigstore/verify`) against the configured
 * trust root, and its certificate identity matched against the project's trusted publishers.
 *
 * The checks, each named in the problem's `check` when it fails (PEP 740 "Attestation verification"):
 * - `bundle`: the object converts to a valid Sigstore bundle (certificate, log entries).
 * - `signature`: the DSSE signature over the statement (PAE, `application/vnd.in-toto+json`)
 *   verifies with the certificate's key.
 * - `signing-time`: every transparency log entry's inclusion time lies within the certificate's
 *   validity ("the verifier MUST confirm that the inclusion time for each entry lies within the
 *   signing certificate's validity period").
 * - `certificate`: the certificate chains to a certificate authority of the trust root, valid at
 *   the signing time, with the certificate transparency SCTs it requires.
 * - `transparency-log`: each log entry's inclusion promise (SET) or inclusion proof verifies with a
 *   log key of the trust root, and the entry's body is this signature and statement.
 * - `trusted-publisher` / `no-trusted-publisher`: the certificate's identity is one of the project's
 *   trusted publishers.
 * The statement's own constraints (one subject, this file name and sha256, a supported predicate
 * type) are core's, checked before (`invalid-attestations`, `check: statement`).
 */
import { X509Certificate, crypto } from '@sigstore/core';
import { toSignedEntity, Verifier, VerificationError, type TrustMaterial } from '@sigstore/verify';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import { ProblemError, type Attestation, type AttestationPublisher, type AttestationVerifier, type VerifiableFile } from '@pep694/core';
import { attestationToBundle } from './bundle.js';
import { certificateIdentity, type CertificateIdentity } from './identity.js';
import { publicGoodTrustedRoot, trustMaterialOf } from './trusted-root.js';
import { matches, publisherObject, type TrustedPublisherSource } from './trusted-publishers.js';

export type VerificationCheck =
  'bundle' | 'signature' | 'signing-time' | 'certificate' | 'transparency-log' | 'trusted-publisher' | 'no-trusted-publisher';

export interface SigstoreVerifierOptions {
  /** Who may sign for which project. */
  readonly publishers: TrustedPublisherSource;
  /** The trust root; default: Sigstore public-good, as shipped in `@sigstore/tuf` (offline). */
  readonly trustedRoot?: TrustedRoot;
  /**
   * SCTs (certificate transparency) each certificate must carry from a CT log of the trust root
   * (default 1, as Fulcio embeds one; 0 only for a private CA that logs no certificates).
   */
  readonly ctlogThreshold?: number;
}

/** A date for a message; a certificate or log entry may carry one that is no date at all. */
const iso = (d: Date) => (Number.isNaN(d.getTime()) ? 'an invalid time' : d.toISOString());
const clip = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);

function refuse(check: VerificationCheck, index: number, message: string): ProblemError {
  const untrusted = check === 'trusted-publisher' || check === 'no-trusted-publisher';
  return new ProblemError(
    untrusted ? 'attestation-untrusted-publisher' : 'attestation-unverified',
    `Attestation ${index} failed the ${check} check: ${message}.`,
    { extensions: { check, index }, errors: [{ source: `/${index}`, message: `${check}: ${message}` }] },
  );
}

/** What sigstore-js reports, as one of our checks. */
function checkOf(err: VerificationError): VerificationCheck {
  switch (err.code) {
    case 'SIGNATURE_ERROR':
      return 'signature';
    case 'CERTIFICATE_ERROR':
    case 'PUBLIC_KEY_ERROR':
      return 'certificate';
    default:
      return 'transparency-log';
  }
}

export class SigstoreAttestationVerifier implements AttestationVerifier {
  private readonly trust: TrustMaterial;
  private readonly verifier: Verifier;

  constructor(private readonly options: SigstoreVerifierOptions) {
    this.trust = trustMaterialOf(options.trustedRoot ?? publicGoodTrustedRoot());
    // One log entry with a verifiable inclusion time at least: PEP 740 leaves the log to policy;
    // without it nothing bounds when the short-lived certificate was used.
    this.verifier = new Verifier(this.trust, { tlogThreshold: 1, timestampThreshold: 1, ctlogThreshold: options.ctlogThreshold ?? 1 });
  }

  async verify(attestations: readonly Attestation[], file: VerifiableFile): Promise<readonly AttestationPublisher[]> {
    const publishers = this.options.publishers.publishersOf(file.project);
    if (publishers.length === 0) {
      throw refuse('no-trusted-publisher', 0, `the project ${clip(file.project)} has no trusted publisher configured on this index`);
    }
    return attestations.map((attestation, index) => this.verifyOne(attestation, index, publishers));
  }

  private verifyOne(
    attestation: Attestation,
    index: number,
    publishers: ReturnType<TrustedPublisherSource['publishersOf']>,
  ): AttestationPublisher {
    let entity: ReturnType<typeof toSignedEntity>;
    let leaf: X509Certificate;
    let validity: { notBefore: Date; notAfter: Date };
    let identity: CertificateIdentity;
    try {
      entity = toSignedEntity(attestationToBundle(attestation));
      leaf = X509Certificate.parse(Buffer.from(attestation.verification_material.certificate, 'base64'));
      // The certificate's fields are decoded lazily, and a malformed one throws when read: read
      // them all here, so that every later step works on fields known to parse.
      validity = { notBefore: leaf.notBefore, notAfter: leaf.notAfter };
      identity = certificateIdentity(leaf);
      crypto.createPublicKey(leaf.publicKey);
    } catch (err) {
      throw refuse('bundle', index, `not a Sigstore bundle (${clip((err as Error).message ?? String(err))})`);
    }
    // Checked first, on its own, so that a bad signature is reported as such (sigstore-js checks
    // the log entry's copy of the signature before the signature itself).
    let signed: boolean;
    try {
      signed = entity.signature.verifySignature(crypto.createPublicKey(leaf.publicKey));
    } catch {
      signed = false;
    }
    if (!signed) throw refuse('signature', index, "the envelope signature does not verify with the certificate's key");
    const entries = entity.tlogEntries;
    if (entries.length === 0) throw refuse('transparency-log', index, 'the attestation has no transparency log entry');
    for (const entry of entries) {
      const at = new Date(Number(entry.integratedTime) * 1000);
      if (!(at >= validity.notBefore && at <= validity.notAfter)) {
        throw refuse(
          'signing-time',
          index,
          `the log entry ${String(entry.logIndex)} was integrated at ${iso(at)}, outside the certificate's validity (${iso(validity.notBefore)} to ${iso(validity.notAfter)})`,
        );
      }
    }
    try {
      this.verifier.verify(entity);
    } catch (err) {
      if (err instanceof VerificationError) throw refuse(checkOf(err), index, clip(err.message));
      throw refuse('bundle', index, clip((err as Error).message ?? String(err)));
    }
    const publisher = publishers.find((p) => matches(p, identity));
    if (!publisher) {
      const who = identity.claims.buildConfigURI ?? identity.subjectAlternativeName ?? 'an unnamed identity';
      throw refuse('trusted-publisher', index, `the certificate names ${clip(who)}, which is not a trusted publisher of this project`);
    }
    return publisherObject(publisher, identity);
  }
}
