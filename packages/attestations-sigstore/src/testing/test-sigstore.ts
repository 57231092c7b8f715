/**
 * A Sigstore instance made in the test: a certificate authority (Fulcio's role), a transparency
 * log key (Rekor's) and a certificate transparency log key, published as a `trusted_root.json`;
 * and a signer that issues short-lived certificates with Fulcio's identity extensions (GitHub
 * Actions or GitLab CI/CD style) and produces PEP 740 attestation objects the way PyPI's
 * `pypi-attestations` does: a DSSE envelope over an in-toto statement, the leaf certificate, and
 * a Rekor `dsse` entry with its signed inclusion promise (SET) and an SCT in the certificate.
 *
 * Nothing here changes the verifier: it is given this trust root, as an operator of a private
 * Sigstore instance would give it theirs. Every "bad" attestation is built the way an attacker or
 * a broken signer would build it, then verified for real.
 */
import 'reflect-metadata';
import { createHash, KeyObject, sign as nodeSign, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as x509 from '@peculiar/x509';
import { json, X509Certificate as SigstoreCertificate } from '@sigstore/core';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import type { Attestation } from '@pep694/core';
import { FULCIO_OID } from '../identity.js';
import { trustedRootFromJSON } from '../trusted-root.js';

const cryptoImpl = webcrypto;
x509.cryptoProvider.set(cryptoImpl);
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;

/** The identity a certificate carries: its SAN URI and Fulcio's claim extensions. */
export interface TestIdentity {
  readonly san: string;
  readonly claims: Readonly<Partial<Record<Exclude<keyof typeof FULCIO_OID, 'issuerV1'>, string>>>;
}

/** A GitHub Actions workflow identity, as Fulcio certifies it. */
export function githubIdentity(o: { repository: string; workflow: string; ref?: string; sha?: string; host?: string }): TestIdentity {
  const host = o.host ?? 'https://github.com';
  const ref = o.ref ?? 'refs/tags/v1.0';
  const uri = `${host}/${o.repository}/.github/workflows/${o.workflow}@${ref}`;
  return {
    san: uri,
    claims: {
      issuer: 'https://token.actions.githubusercontent.com',
      buildSignerURI: uri,
      sourceRepositoryURI: `${host}/${o.repository}`,
      sourceRepositoryRef: ref,
      sourceRepositoryDigest: o.sha ?? 'a'.repeat(40),
      buildConfigURI: uri,
      buildTrigger: 'push',
    },
  };
}

/** A GitLab CI/CD pipeline identity, as Fulcio certifies it. */
export function gitlabIdentity(o: { repository: string; workflow_filepath: string; ref?: string; sha?: string }): TestIdentity {
  const ref = o.ref ?? 'refs/heads/main';
  const uri = `https://gitlab.com/${o.repository}//${o.workflow_filepath}@${ref}`;
  return {
    san: uri,
    claims: {
      issuer: 'https://gitlab.com',
      buildSignerURI: uri,
      sourceRepositoryURI: `https://gitlab.com/${o.repository}`,
      sourceRepositoryRef: ref,
      sourceRepositoryDigest: o.sha ?? 'b'.repeat(40),
      buildConfigURI: uri,
      buildTrigger: 'push',
    },
  };
}

export interface AttestOptions {
  readonly filename: string;
  readonly sha256: string;
  readonly identity: TestIdentity;
  readonly predicateType?: string;
  /** When the log integrated the entry; default: now. */
  readonly integratedTime?: Date;
  /** The leaf certificate's validity; default: from 5 minutes ago, 10 minutes long (Fulcio's). */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Issue the certificate from this (untrusted) instance's CA instead, keeping this instance's log. */
  readonly issuer?: TestSigstore;
}

/** DER TLV with a short or long length. */
function der(tag: number, body: Uint8Array): Buffer {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
const utf8String = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

async function keyPair(): Promise<CryptoKeyPair> {
  return await cryptoImpl.subtle.generateKey(EC, true, ['sign', 'verify']);
}
async function spki(key: CryptoKey): Promise<Buffer> {
  return Buffer.from(await cryptoImpl.subtle.exportKey('spki', key));
}
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest();
/** ECDSA P-256 / SHA-256, DER-encoded as Sigstore signatures are. */
const signDer = (data: Uint8Array, key: CryptoKey) => nodeSign('sha256', data, KeyObject.from(key));

export class TestSigstore {
  private logIndex = 0;

  private constructor(
    private readonly ca: { keys: CryptoKeyPair; cert: x509.X509Certificate },
    private readonly tlog: { keys: CryptoKeyPair; spki: Buffer },
    private readonly ctlog: { keys: CryptoKeyPair; spki: Buffer },
    /** `trusted_root.json` of this instance, as an operator would configure it. */
    readonly trustedRootJSON: Record<string, unknown>,
  ) {}

  /** A new instance: its own CA, log and CT log keys. */
  static async create(name = 'pep694 test sigstore'): Promise<TestSigstore> {
    const caKeys = await keyPair();
    const notBefore = new Date(Date.now() - 365 * 24 * HOUR);
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      name: `CN=${name},O=pep694 tests`,
      keys: caKeys,
      notBefore,
      notAfter: new Date(Date.now() + 365 * 24 * HOUR),
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
      ],
    });
    const tlogKeys = await keyPair();
    const ctKeys = await keyPair();
    const tlogSpki = await spki(tlogKeys.publicKey);
    const ctSpki = await spki(ctKeys.publicKey);
    const start = notBefore.toISOString();
    const log = (key: Buffer, url: string) => ({
      baseUrl: url,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: key.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: sha256(key).toString('base64') },
    });
    const root = {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [log(tlogSpki, 'https://rekor.test')],
      certificateAuthorities: [
        {
          subject: { organization: 'pep694 tests', commonName: name },
          uri: 'https://fulcio.test',
          certChain: { certificates: [{ rawBytes: Buffer.from(caCert.rawData).toString('base64') }] },
          validFor: { start },
        },
      ],
      ctlogs: [log(ctSpki, 'https://ctfe.test')],
      timestampAuthorities: [],
    };
    return new TestSigstore({ keys: caKeys, cert: caCert }, { keys: tlogKeys, spki: tlogSpki }, { keys: ctKeys, spki: ctSpki }, root);
  }

  /** The trust root, parsed, for `SigstoreAttestationVerifier`'s `trustedRoot`. */
  get trustedRoot(): TrustedRoot {
    return trustedRootFromJSON(this.trustedRootJSON);
  }

  /**
   * Issues a leaf certificate for `identity` (Fulcio's profile: code signing, the SAN URI, the
   * claim extensions) with an SCT from this instance's CT log embedded, as Fulcio does: the SCT
   * signs the certificate without its SCT extension (RFC 6962 §3.2 precertificate).
   */
  async issue(identity: TestIdentity, publicKey: CryptoKey, notBefore: Date, notAfter: Date): Promise<Buffer> {
    const serialNumber = createHash('sha256')
      .update(`${Date.now()}:${Math.random()}`)
      .digest('hex')
      .slice(0, 32)
      .replace(/^[89a-f]/, '1');
    const extensions: x509.Extension[] = [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(this.ca.keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity.san }], true),
      ...Object.entries(identity.claims).map(
        ([claim, value]) => new x509.Extension(FULCIO_OID[claim as keyof typeof FULCIO_OID], false, utf8String(value)),
      ),
    ];
    const params = {
      serialNumber,
      subject: '',
      issuer: this.ca.cert.subject,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.ca.keys.privateKey,
      signingAlgorithm: SIGN,
    };
    const precert = await x509.X509CertificateGenerator.create({ ...params, extensions });
    const tbs = SigstoreCertificate.parse(Buffer.from(precert.rawData)).tbsCertificate.toDER();
    const issuerKeyHash = sha256(Buffer.from(this.ca.cert.publicKey.rawData));
    const timestamp = Buffer.alloc(8);
    timestamp.writeBigUInt64BE(BigInt(notBefore.getTime()));
    const signed = Buffer.concat([
      Buffer.from([0, 0]), // v1, certificate_timestamp
      timestamp,
      u16(1), // precert_entry
      issuerKeyHash,
      Buffer.from([tbs.length >> 16, (tbs.length >> 8) & 0xff, tbs.length & 0xff]),
      tbs,
      u16(0), // no extensions
    ]);
    const signature = signDer(signed, this.ctlog.keys.privateKey);
    const sct = Buffer.concat([
      Buffer.from([0]),
      sha256(this.ctlog.spki),
      timestamp,
      u16(0),
      Buffer.from([4, 3]),
      u16(signature.length),
      signature,
    ]);
    const list = Buffer.concat([u16(sct.length + 2), u16(sct.length), sct]);
    const sctExtension = new x509.Extension('1.3.6.1.4.1.11129.2.4.2', false, der(0x04, list));
    const cert = await x509.X509CertificateGenerator.create({ ...params, extensions: [...extensions, sctExtension] });
    return Buffer.from(cert.rawData);
  }

  /** A PEP 740 attestation for `filename` and `sha256`, signed by `identity` and logged here. */
  async attest(o: AttestOptions): Promise<Attestation> {
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: o.filename, digest: { sha256: o.sha256 } }],
        predicateType: o.predicateType ?? 'https://docs.pypi.org/attestations/publish/v1',
        predicate: null,
      }),
    );
    const now = Date.now();
    const leafKeys = await keyPair();
    const notBefore = o.notBefore ?? new Date(now - 5 * 60_000);
    const notAfter = o.notAfter ?? new Date(notBefore.getTime() + 10 * 60_000);
    const certificate = await (o.issuer ?? this).issue(o.identity, leafKeys.publicKey, notBefore, notAfter);
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${'application/vnd.in-toto+json'.length} application/vnd.in-toto+json ${statement.length} `),
      statement,
    ]);
    const signature = signDer(pae, leafKeys.privateKey);
    return {
      version: 1,
      verification_material: {
        certificate: certificate.toString('base64'),
        transparency_entries: [this.logEntry(statement, signature, certificate, o.integratedTime ?? new Date(now))],
      },
      envelope: { statement: statement.toString('base64'), signature: signature.toString('base64') },
    };
  }

  /** A Rekor `dsse` v0.0.1 entry for the envelope, with this log's signed entry timestamp. */
  logEntry(statement: Buffer, signature: Buffer, certificate: Buffer, integrated: Date): Record<string, unknown> {
    const pem = `-----BEGIN CERTIFICATE-----\n${certificate.toString('base64')}\n-----END CERTIFICATE-----\n`;
    const body = Buffer.from(
      json.canonicalize({
        apiVersion: '0.0.1',
        kind: 'dsse',
        spec: {
          payloadHash: { algorithm: 'sha256', value: sha256(statement).toString('hex') },
          signatures: [{ signature: signature.toString('base64'), verifier: Buffer.from(pem).toString('base64') }],
        },
      }),
    );
    const logIndex = ++this.logIndex;
    const integratedTime = Math.floor(integrated.getTime() / 1000);
    const logID = sha256(this.tlog.spki);
    const set = signDer(
      Buffer.from(json.canonicalize({ body: body.toString('base64'), integratedTime, logIndex, logID: logID.toString('hex') })),
      this.tlog.keys.privateKey,
    );
    // A one-leaf tree (RFC 6962 §2.1: its root is the leaf hash) and a checkpoint signed by the log
    // (a signed note: origin, size, root; then "— <name> base64(key hint ‖ signature)").
    const root = createHash('sha256')
      .update(Buffer.from([0]))
      .update(body)
      .digest();
    const note = `rekor.test - 1\n1\n${root.toString('base64')}\n`;
    const noteSignature = Buffer.concat([logID.subarray(0, 4), signDer(Buffer.from(note), this.tlog.keys.privateKey)]);
    return {
      logIndex: String(logIndex),
      logId: { keyId: logID.toString('base64') },
      kindVersion: { kind: 'dsse', version: '0.0.1' },
      integratedTime: String(integratedTime),
      inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
      inclusionProof: {
        logIndex: '0',
        rootHash: root.toString('base64'),
        treeSize: '1',
        hashes: [],
        checkpoint: { envelope: `${note}\n\u2014 rekor.test ${noteSignature.toString('base64')}\n` },
      },
      canonicalizedBody: body.toString('base64'),
    };
  }
}
