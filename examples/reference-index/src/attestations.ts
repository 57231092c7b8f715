/**
 * The reference index's PEP 740 verifier, from the environment: Sigstore, with trusted publishers
 * from a JSON file beside the tokens file (re-read when it changes), and the public-good trust
 * root unless the operator names a private instance's `trusted_root.json`.
 *
 *   PEP694_TRUSTED_PUBLISHERS_FILE   the trusted publishers file; default `trusted-publishers.json`
 *                                    beside PEP694_TOKENS_FILE when that file exists. None: no
 *                                    project has a trusted publisher, so every attestation is refused.
 *   PEP694_SIGSTORE_TRUSTED_ROOT     a `trusted_root.json`; default: Sigstore public-good (shipped, offline).
 *   PEP694_SIGSTORE_CTLOG_THRESHOLD  SCTs a certificate must carry (default 1; 0 for a private CA without CT).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  readTrustedRoot,
  SigstoreAttestationVerifier,
  StaticTrustedPublishers,
  TrustedPublishersFile,
  type TrustedPublisherSource,
} from '@pep694/attestations-sigstore';

export interface AttestationSetup {
  readonly verifier: SigstoreAttestationVerifier;
  /** What the start-up banner says about it. */
  readonly description: string;
}

export function attestationVerifierFromEnv(env: NodeJS.ProcessEnv = process.env): AttestationSetup {
  const beside = env.PEP694_TOKENS_FILE ? join(dirname(env.PEP694_TOKENS_FILE), 'trusted-publishers.json') : undefined;
  const file = env.PEP694_TRUSTED_PUBLISHERS_FILE || (beside && existsSync(beside) ? beside : undefined);
  const publishers: TrustedPublisherSource = file ? new TrustedPublishersFile(file) : new StaticTrustedPublishers({ projects: {} });
  const rootPath = env.PEP694_SIGSTORE_TRUSTED_ROOT || undefined;
  const threshold = env.PEP694_SIGSTORE_CTLOG_THRESHOLD;
  if (threshold !== undefined && threshold !== '' && !/^[0-9]$/.test(threshold))
    throw new Error(`PEP694_SIGSTORE_CTLOG_THRESHOLD must be a small non-negative integer, not ${JSON.stringify(threshold)}`);
  const verifier = new SigstoreAttestationVerifier({
    publishers,
    ...(rootPath ? { trustedRoot: readTrustedRoot(rootPath) } : {}),
    ...(threshold ? { ctlogThreshold: Number(threshold) } : {}),
  });
  const description = `Sigstore ${rootPath ? `(trust root ${rootPath})` : '(public-good)'}; trusted publishers ${file ?? 'none (every attestation is refused)'}`;
  return { verifier, description };
}
