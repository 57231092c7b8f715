/**
 * The form fields of a legacy upload that decide what is uploaded, checked before a byte of the
 * file is stored: `:action`, `protocol_version`, `name`, `version`, `filetype`, `pyversion` and
 * the digests, and the file part's filename against them. The other core-metadata fields twine
 * sends (summary, classifiers, requires_dist, …) are accepted and not kept: the index serves the
 * metadata inside the artifact (PEP 658), which the distribution validator reads.
 */
import {
  checkFilenameMatchesRelease,
  checkFilenameNormalized,
  parseProjectName,
  parseVersion,
  ProblemError,
  type DistributionFilename,
} from '@pep694/core';

/** The form's fields as received, every value of a repeated field in order. */
export type FormFields = ReadonlyMap<string, readonly string[]>;

/** What the fields say is being uploaded. */
export interface LegacyRelease {
  /** Normalized project name, and the name as sent. */
  readonly project: string;
  readonly displayName: string;
  readonly version: string;
  readonly filename: string;
  readonly dist: DistributionFilename;
  /** Declared digests, lowercase hex: `sha256_digest`, `md5_digest`, `blake2_256_digest`. */
  readonly sha256?: string;
  readonly md5?: string;
  readonly blake2_256?: string;
}

/** The `filetype` values Warehouse knows, and which file names each may carry. */
const FILETYPES: Readonly<Record<string, (d: DistributionFilename) => boolean>> = {
  sdist: (d) => d.kind === 'sdist',
  bdist_wheel: (d) => d.kind === 'wheel',
};

const invalid = (field: string, message: string) =>
  new ProblemError('invalid-parameter', `Invalid value for ${field}. Error: ${message}`, { errors: [{ source: field, message }] });

/** The one value of a field, or undefined; a field sent twice is refused (only list fields repeat). */
function single(fields: FormFields, name: string): string | undefined {
  const values = fields.get(name);
  if (values === undefined) return undefined;
  if (values.length > 1) throw invalid(name, 'the field was sent more than once.');
  return values[0];
}

function required(fields: FormFields, name: string): string {
  const value = single(fields, name)?.trim();
  if (!value) throw invalid(name, 'This field is required.');
  return value;
}

function digest(fields: FormFields, name: string, hexLength: number): string | undefined {
  const value = single(fields, name)?.trim();
  if (!value) return undefined;
  if (value.length !== hexLength || !/^[0-9a-fA-F]+$/.test(value)) {
    throw invalid(name, `Must be a valid, hex encoded digest of ${hexLength} characters.`);
  }
  return value.toLowerCase();
}

/**
 * `:action` and `protocol_version` (PEP 694 "Legacy API": `file_upload`, `1`), from the form or,
 * as the PEP's URL shows them, from the query string.
 */
export function checkAction(fields: FormFields, query: URLSearchParams): void {
  const action = single(fields, ':action') ?? query.get(':action') ?? undefined;
  if (action !== 'file_upload') {
    throw new ProblemError(
      'invalid-parameter',
      action === undefined
        ? 'The form has no :action field; this endpoint takes :action=file_upload.'
        : `Unknown :action ${JSON.stringify(action.slice(0, 50))}; this endpoint takes only file_upload.`,
    );
  }
  const protocol = single(fields, 'protocol_version') ?? query.get('protocol_version') ?? '1';
  if (protocol !== '1') {
    throw new ProblemError(
      'invalid-parameter',
      `Unknown protocol_version ${JSON.stringify(protocol.slice(0, 20))}; this endpoint speaks 1.`,
    );
  }
}

/** Reads the release from the fields and the file part's name; throws a 400 problem naming the field. */
export function readRelease(fields: FormFields, filename: string | undefined): LegacyRelease {
  const displayName = required(fields, 'name');
  let project: string;
  try {
    project = parseProjectName(displayName);
  } catch {
    throw invalid('name', 'Must start and end with a letter or numeral and contain only ascii numeric and ".", "_" and "-".');
  }
  const versionField = required(fields, 'version');
  let version: string;
  try {
    version = parseVersion(versionField);
  } catch {
    throw invalid('version', `${JSON.stringify(versionField.slice(0, 50))} is not a valid PEP 440 version.`);
  }
  const filetype = required(fields, 'filetype');
  if (!filename) {
    throw new ProblemError('malformed-upload', 'The content part has no filename; send the distribution as a file part named content.');
  }
  // The same checks as a PEP 694 file upload session's: a valid name of this release, normalized.
  const dist = checkFilenameMatchesRelease(filename, project, version);
  checkFilenameNormalized(filename);
  const fits = FILETYPES[filetype];
  if (!fits)
    throw invalid('filetype', `Unknown type of file ${JSON.stringify(filetype.slice(0, 30))}: this index takes sdist and bdist_wheel.`);
  if (!fits(dist)) throw invalid('filetype', `${filetype} does not match the file ${filename}.`);
  const sha256 = digest(fields, 'sha256_digest', 64);
  const md5 = digest(fields, 'md5_digest', 32);
  const blake2_256 = digest(fields, 'blake2_256_digest', 64);
  if (!sha256 && !md5) {
    throw new ProblemError('invalid-parameter', 'Include at least one message digest (sha256_digest, or md5_digest).');
  }
  return {
    project,
    displayName,
    version,
    filename,
    dist,
    ...(sha256 ? { sha256 } : {}),
    ...(md5 ? { md5 } : {}),
    ...(blake2_256 ? { blake2_256 } : {}),
  };
}
