/**
 * Inputs of store calls that a backend's own tests build too, so that every test spells them
 * once.
 */
import { distributionIdentity, releaseKey, type NewDirectPublish } from '@pep694/core';

/**
 * The input of a legacy upload's one-request publish (`UploadStore.publishFile`) of `filename` in
 * `project`: version 1.0 unless given, its release key and file identity derived, 42 bytes, its
 * bytes under `files/<fileId>`, no attestations, core metadata or Requires-Python, by alice;
 * anything in `fields` replaces the default.
 */
export function newDirectPublish(
  fields: Pick<NewDirectPublish, 'sessionId' | 'fileId' | 'project' | 'filename' | 'at'> & Partial<NewDirectPublish>,
): NewDirectPublish {
  const version = fields.version ?? '1.0';
  return {
    displayName: fields.project,
    version,
    releaseKey: releaseKey(version),
    identity: distributionIdentity(fields.filename),
    size: 42,
    hashes: { sha256: '0'.repeat(64) },
    blobKey: `files/${fields.fileId}`,
    attestations: null,
    coreMetadata: null,
    requiresPython: null,
    mechanism: 'legacy',
    createdBy: 'alice',
    ...fields,
  };
}
