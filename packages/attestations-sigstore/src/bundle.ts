/**
 * A PEP 740 attestation object as a Sigstore bundle. PEP 740's object is a re-encoding of a
 * Sigstore bundle with a DSSE envelope (the shape `pypi-attestations` converts with
 * `Attestation.to_bundle`): `verification_material.certificate` is the leaf certificate (base64 DER),
 * `transparency_entries` are Rekor `TransparencyLogEntry` messages in their protobuf JSON form,
 * and `envelope` holds the DSSE payload (the statement) and its one signature, with the only
 * payload type PEP 740 permits, `application/vnd.in-toto+json`.
 */
import { bundleFromJSON, BUNDLE_V03_MEDIA_TYPE, type Bundle } from '@sigstore/bundle';
import type { Attestation } from '@pep694/core';

/** PEP 740 "Attestation statement and signature generation": "No other PAYLOAD_TYPE is permitted." */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** Builds and validates the bundle (throws `ValidationError` from `@sigstore/bundle` when it is not one). */
export function attestationToBundle(attestation: Attestation): Bundle {
  return bundleFromJSON({
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: {
      certificate: { rawBytes: attestation.verification_material.certificate },
      tlogEntries: attestation.verification_material.transparency_entries,
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: {
      payload: attestation.envelope.statement,
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: attestation.envelope.signature, keyid: '' }],
    },
  });
}
