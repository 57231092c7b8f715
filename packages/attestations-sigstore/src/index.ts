/**
 * @pep694/attestations-sigstore: a PEP 740 `AttestationVerifier` for @pep694/core hosts, backed by
 * sigstore-js (4.x line: `@sigstore/verify` 3, `@sigstore/bundle` 4, `@sigstore/core` 3, for Node 20).
 */
export { SigstoreAttestationVerifier, type SigstoreVerifierOptions, type VerificationCheck } from './verifier.js';
export { attestationToBundle, IN_TOTO_PAYLOAD_TYPE } from './bundle.js';
export { certificateIdentity, FULCIO_OID, type CertificateIdentity, type FulcioClaim } from './identity.js';
export { publicGoodTrustedRoot, readTrustedRoot, trustedRootFromJSON } from './trusted-root.js';
export {
  matches,
  normalizeProject,
  publisherObject,
  StaticTrustedPublishers,
  TrustedPublisherSchema,
  TrustedPublishersFileSchema,
  type TrustedPublisher,
  type TrustedPublisherInput,
  type TrustedPublisherSource,
  type TrustedPublishersConfig,
  type TrustedPublishersInput,
} from './trusted-publishers.js';
export { TrustedPublishersFile } from './trusted-publishers-file.js';
