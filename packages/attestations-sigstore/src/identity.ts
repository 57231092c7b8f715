/**
 * The signing identity a Fulcio certificate carries: its Subject Alternative Name and the claims
 * Fulcio copies from the CI provider's OIDC token into X.509 extensions under the Sigstore OID arc
 * 1.3.6.1.4.1.57264.1 (Fulcio's `docs/oid-info.md`). Trusted publishers are matched against these.
 */
import { ASN1Obj, X509Certificate } from '@sigstore/core';

/** Fulcio's extension OIDs (the "V2" ones hold a DER UTF8String; 1.1, the V1 issuer, raw text). */
export const FULCIO_OID = {
  issuerV1: '1.3.6.1.4.1.57264.1.1',
  issuer: '1.3.6.1.4.1.57264.1.8',
  buildSignerURI: '1.3.6.1.4.1.57264.1.9',
  buildSignerDigest: '1.3.6.1.4.1.57264.1.10',
  runnerEnvironment: '1.3.6.1.4.1.57264.1.11',
  sourceRepositoryURI: '1.3.6.1.4.1.57264.1.12',
  sourceRepositoryDigest: '1.3.6.1.4.1.57264.1.13',
  sourceRepositoryRef: '1.3.6.1.4.1.57264.1.14',
  buildConfigURI: '1.3.6.1.4.1.57264.1.18',
  buildConfigDigest: '1.3.6.1.4.1.57264.1.19',
  buildTrigger: '1.3.6.1.4.1.57264.1.20',
  runInvocationURI: '1.3.6.1.4.1.57264.1.21',
} as const;

export type FulcioClaim = Exclude<keyof typeof FULCIO_OID, 'issuerV1'>;

export interface CertificateIdentity {
  /** The Subject Alternative Name (for CI identities, the build config URI). */
  readonly subjectAlternativeName: string | undefined;
  readonly claims: Readonly<Partial<Record<FulcioClaim, string>>>;
}

function utf8Extension(cert: X509Certificate, oid: string): string | undefined {
  const ext = cert.extension(oid);
  if (!ext) return undefined;
  try {
    return ASN1Obj.parseBuffer(Buffer.from(ext.value)).value.toString('utf8');
  } catch {
    return undefined;
  }
}

/** Reads the identity of a (DER) certificate. Throws on a certificate that does not parse. */
export function certificateIdentity(cert: X509Certificate): CertificateIdentity {
  const claims: Partial<Record<FulcioClaim, string>> = {};
  for (const [name, oid] of Object.entries(FULCIO_OID) as [keyof typeof FULCIO_OID, string][]) {
    if (name === 'issuerV1') continue;
    const value = utf8Extension(cert, oid);
    if (value !== undefined) claims[name] = value;
  }
  // Certificates from before the V2 issuer extension carry the issuer as raw text under 1.1.
  if (claims.issuer === undefined) {
    const v1 = cert.extension(FULCIO_OID.issuerV1);
    if (v1) claims.issuer = Buffer.from(v1.value).toString('utf8');
  }
  return { subjectAlternativeName: cert.subjectAltName, claims };
}
