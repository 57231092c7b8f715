/**
 * @pep694/dist-validator: a `FileValidator` for Python distributions, run by the host when a file
 * upload session completes (after size and hashes match). A wheel must be a readable zip whose
 * single `{name}-{version}.dist-info/METADATA` names the session's project and version; an sdist a
 * readable `.tar.gz` whose `{name}-{version}/PKG-INFO` does. Names compare after normalization,
 * versions by PEP 440 equality. Both must be unambiguous archives, read the same by this index and
 * by Python's zipfile and tarfile (which pip uses), with safe member paths and, for sdists, no
 * links out, device files or second top-level directory. The core metadata bytes and
 * `Requires-Python` (a valid PEP 440 specifier set, bounded in length like Name and Version) are
 * returned, for the index to serve as PEP 658 `.metadata` files and `requires-python`.
 *
 * It never throws: any failure, including a bug, becomes `{ ok: false }` with a message, so the
 * host answers 422 and never 500 for a bad upload.
 */
import { normalizeName, type ArtifactUnderValidation, type FileValidator, type ValidationResult } from '@pep694/core';
import { DEFAULT_LIMITS, type DistributionLimits } from './limits.js';
import { describe, type ArchiveOutcome } from './outcome.js';
import type { Release } from './release.js';
import { validateSdist } from './sdist.js';
import { validateWheel } from './wheel.js';

export { DEFAULT_LIMITS, type DistributionLimits } from './limits.js';
export { parseMetadataHeaders, type MetadataHeaders, type ParsedMetadata } from './metadata.js';

export class DistributionValidator implements FileValidator {
  readonly name = 'distribution';
  readonly limits: DistributionLimits;

  constructor(limits: Partial<DistributionLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  async validate(artifact: ArtifactUnderValidation): Promise<ValidationResult> {
    const release: Release = { project: normalizeName(artifact.project), version: artifact.version };
    const kind = artifact.filename.endsWith('.whl') ? 'wheel' : artifact.filename.endsWith('.tar.gz') ? 'sdist' : undefined;
    let outcome: ArchiveOutcome;
    try {
      if (kind === 'wheel') outcome = await validateWheel(artifact, release, this.limits);
      else if (kind === 'sdist') outcome = await validateSdist(artifact, release, this.limits);
      else
        outcome = {
          ok: false,
          errors: [{ source: artifact.filename, message: 'only wheels (.whl) and sdists (.tar.gz) can be validated' }],
        };
    } catch (err) {
      outcome = { ok: false, errors: [{ source: artifact.filename, message: `the archive could not be read: ${describe(err)}` }] };
    }
    if (outcome.ok) {
      return {
        ok: true,
        coreMetadata: new Uint8Array(outcome.metadata),
        ...(outcome.requiresPython ? { requiresPython: outcome.requiresPython } : {}),
      };
    }
    const what = kind ?? 'distribution';
    return {
      ok: false,
      detail: `${artifact.filename} is not a valid ${what} of ${release.project} ${release.version}: ${outcome.errors.map((e) => e.message).join('; ')}.`,
      errors: outcome.errors,
    };
  }
}

/**
 * A validator with the given limits (defaults: 100,000 entries, 1 MiB metadata, sdists decompressed
 * up to 100 times their size, at least 32 MiB, at most 1 GiB; 255-character Name and Version,
 * 256-character Requires-Python).
 */
export function createDistributionValidator(limits: Partial<DistributionLimits> = {}): FileValidator {
  return new DistributionValidator(limits);
}
