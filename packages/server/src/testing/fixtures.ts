/** Test data shaped as the PEPs require. */
import { createHash, randomBytes } from 'node:crypto';
import { nodeHashName, type HashName } from '@pep694/core';

/** Hex digest of `bytes` with a hashlib-named algorithm. */
export function digest(name: HashName, bytes: Uint8Array): string {
  return createHash(nodeHashName(name)).update(bytes).digest('hex');
}
export const sha256 = (bytes: Uint8Array): string => digest('sha256', bytes);

/**
 * A PEP 740 attestation object about `filename` with `sha256` (a PyPI publish statement; the
 * certificate and signature are random bytes: nothing here verifies them). `extra` adds keys.
 */
export function attestation(filename: string, sha256: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: filename, digest: { sha256 } }],
    predicateType: 'https://docs.pypi.org/attestations/publish/v1',
    predicate: {},
  };
  return {
    version: 1,
    verification_material: {
      certificate: randomBytes(64).toString('base64'),
      transparency_entries: [
        { log_index: 1, log_id: 'x', entry_kind: 'dsse', entry_version: '0.0.1', integrated_time: 1, inclusion_proof: {} },
      ],
    },
    envelope: { statement: Buffer.from(JSON.stringify(statement)).toString('base64'), signature: randomBytes(70).toString('base64') },
    ...extra,
  };
}
