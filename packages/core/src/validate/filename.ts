/**
 * Distribution file names: wheels (PyPA "Binary distribution format", file name convention) and
 * sdists (PyPA "Source distribution format", PEP 625).
 *
 * Legacy names are accepted: tools consuming wheels "must be prepared to accept `.` and uppercase
 * letters", and older setuptools wrote sdists like `Demo.Pkg_Extra-0.0.1.tar.gz` or
 * `demo-pkg-1.0.0.tar.gz`. pip and PyPI take them, so the name part only has to be a valid project
 * name; it is compared with the session after normalization. Versions need only be valid PEP 440.
 * Only `.tar.gz` sdists are accepted: the living spec defines no other sdist format. New uploads
 * must in addition be spelled normally (`checkFilenameNormalized`), and files are told apart by
 * `distributionIdentity`, not by their spelling.
 */
import { ProblemError } from '../problem.js';
import { isValidProjectName, normalizeName, parseProjectName } from './name.js';
import { parseVersion, releaseKey, versionsEqual } from './version.js';

/**
 * Invisible and bidirectional-control characters (zero-width, LRM/RLM, embeddings and overrides,
 * isolates, BOM): shown escaped, so that a quoted name cannot reorder or hide text in a message.
 */
const INVISIBLE = /[\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** Quotes a client value for a message: strings JSON-quoted and cut at 100 characters, else the type. */
const show = (v: unknown): string =>
  typeof v === 'string'
    ? JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v).replace(
        INVISIBLE,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      )
    : `(a value of type ${typeof v})`;

export interface WheelFilename {
  readonly kind: 'wheel';
  /** Normalized project name (`demo-pkg`). */
  readonly name: string;
  /** Normalized PEP 440 version. */
  readonly version: string;
  readonly build?: string;
  /** Compressed tag sets (`py2.py3`) split on `.`. */
  readonly pythonTags: readonly string[];
  readonly abiTags: readonly string[];
  readonly platformTags: readonly string[];
}

export interface SdistFilename {
  readonly kind: 'sdist';
  readonly name: string;
  readonly version: string;
}

export type DistributionFilename = WheelFilename | SdistFilename;

const MAX_BYTES = 255; // the usual file-system limit for one path component
const TAG_RE = /^[A-Za-z0-9_]+$/;
const BUILD_RE = /^[0-9][A-Za-z0-9_]*$/;
const LEGACY_EXT = /\.(zip|tar|tgz|tar\.bz2|tbz|tar\.xz|txz|tar\.Z|egg|exe|msi|rpm|dmg|deb)$/i;

function fail(filename: unknown, rule: string): never {
  const message = `The file name ${show(filename)} ${rule}.`;
  throw new ProblemError('invalid-filename', message, { errors: [{ source: '/filename', message }] });
}

/** Checks that protect storage and paths, whatever the distribution kind. */
function checkSafe(filename: unknown): asserts filename is string {
  if (typeof filename !== 'string') fail(filename, 'must be a string');
  if (filename === '') fail(filename, 'must not be empty');
  if (Buffer.byteLength(filename, 'utf8') > MAX_BYTES) fail(filename, `is longer than ${MAX_BYTES} bytes`);
  if (filename.includes('\0')) fail(filename, 'contains a NUL character');
  // C0, DEL and C1 controls: never part of a distribution name, dangerous in logs and headers.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point of this check
  if (/[\u0000-\u001f\u007f-\u009f]/.test(filename)) fail(filename, 'contains a control character');
  if (/[/\\]/.test(filename)) fail(filename, 'contains a path separator');
  if (filename.includes('..')) fail(filename, 'contains ".."');
  if (filename.trim() !== filename) fail(filename, 'has leading or trailing whitespace');
  if (/\s/.test(filename)) fail(filename, 'contains whitespace');
}

function splitTags(filename: string, value: string, what: string): string[] {
  const tags = value.split('.');
  if (tags.some((t) => !TAG_RE.test(t))) {
    fail(filename, `has an invalid ${what} tag ${show(value)} (letters, digits and "_", sets joined by ".")`);
  }
  return tags;
}

function parseName(filename: string, raw: string): string {
  if (!isValidProjectName(raw)) fail(filename, `has an invalid project name part ${show(raw)}`);
  return normalizeName(raw);
}

function parseVersionPart(filename: string, raw: string): string {
  try {
    return parseVersion(raw);
  } catch (err) {
    if (!ProblemError.is(err)) throw err;
    return fail(filename, `has an invalid PEP 440 version part ${show(raw)}`);
  }
}

/** Parses a wheel or sdist file name; throws `invalid-filename` naming the rule broken. */
export function parseDistributionFilename(filename: unknown): DistributionFilename {
  checkSafe(filename);
  if (filename.endsWith('.whl')) {
    const parts = filename.slice(0, -'.whl'.length).split('-');
    if (parts.some((p) => p === '')) fail(filename, 'has an empty dash-separated part');
    if (parts.length !== 5 && parts.length !== 6) {
      fail(
        filename,
        `has ${parts.length} dash-separated parts; a wheel has 5 or 6: ` + '{name}-{version}[-{build}]-{python}-{abi}-{platform}.whl',
      );
    }
    const [rawName = '', rawVersion = ''] = parts;
    const build = parts.length === 6 ? parts[2] : undefined;
    const [py = '', abi = '', plat = ''] = parts.slice(-3);
    const name = parseName(filename, rawName);
    const version = parseVersionPart(filename, rawVersion);
    if (build !== undefined && !BUILD_RE.test(build)) {
      fail(filename, `has an invalid build tag ${show(build)} (must start with a digit)`);
    }
    return {
      kind: 'wheel',
      name,
      version,
      ...(build === undefined ? {} : { build }),
      pythonTags: splitTags(filename, py, 'python'),
      abiTags: splitTags(filename, abi, 'ABI'),
      platformTags: splitTags(filename, plat, 'platform'),
    };
  }
  if (filename.endsWith('.tar.gz')) {
    const stem = filename.slice(0, -'.tar.gz'.length);
    // Split at the last dash, as `packaging.utils.parse_sdist_filename` does: normalized versions
    // have no dash, and legacy names (`demo-pkg-1.0.0.tar.gz`) keep theirs in the name part.
    const dash = stem.lastIndexOf('-');
    if (dash < 0) fail(filename, 'must be {name}-{version}.tar.gz');
    if (stem.split('-').some((p) => p === '')) fail(filename, 'has an empty dash-separated part');
    return {
      kind: 'sdist',
      name: parseName(filename, stem.slice(0, dash)),
      version: parseVersionPart(filename, stem.slice(dash + 1)),
    };
  }
  if (LEGACY_EXT.test(filename)) {
    fail(filename, 'is not a wheel (.whl) or a .tar.gz sdist; legacy formats such as .zip sdists and eggs are not accepted');
  }
  return fail(filename, 'must end in .whl (wheel) or .tar.gz (sdist)');
}

/**
 * Parses `filename` and checks it belongs to the session's release: same normalized name and a
 * PEP 440-equal version (`demo_pkg-1.0.0…` matches `Demo.Pkg` `1.0`). Throws `invalid-filename`,
 * `invalid-name`/`invalid-version` for a bad session value, or `filename-mismatch`.
 */
export function checkFilenameMatchesRelease(filename: unknown, sessionName: string, sessionVersion: string): DistributionFilename {
  const parsed = parseDistributionFilename(filename);
  const name = parseProjectName(sessionName);
  const version = parseVersion(sessionVersion);
  const problems: string[] = [];
  if (parsed.name !== name) problems.push(`expected project "${name}", found "${parsed.name}"`);
  if (!versionsEqual(parsed.version, version)) {
    problems.push(`expected version "${version}", found "${parsed.version}"`);
  }
  if (problems.length > 0) {
    const message = `The file name ${show(filename)} does not match the session: ${problems.join('; ')}.`;
    throw new ProblemError('filename-mismatch', message, { errors: [{ source: '/filename', message }] });
  }
  return parsed;
}

// ---- Normalized spelling and canonical identity ---------------------------------------------------

/**
 * The normalized spelling of a wheel or sdist file name: the project name normalized with runs of
 * `-_.` as `_` and lowercase (PyPA "Binary distribution format", "Escaping and Unicode"; the sdist
 * spec and PEP 625 use the same rule), the version in its PEP 440 normal form, the tags lowercase
 * (installers compare them lowercased, as `packaging.tags` does). The build tag and the order of
 * compressed tag sets are kept: the specs define no normal form for them. Throws `invalid-filename`.
 */
export function normalizedFilename(filename: unknown): string {
  const parsed = parseDistributionFilename(filename);
  const stem = `${parsed.name.replace(/-/g, '_')}-${parsed.version}`;
  if (parsed.kind === 'sdist') return `${stem}.tar.gz`;
  const tags = [parsed.pythonTags, parsed.abiTags, parsed.platformTags].map((set) => set.join('.').toLowerCase());
  return `${stem}${parsed.build === undefined ? '' : `-${parsed.build}`}-${tags.join('-')}.whl`;
}

/**
 * Refuses a file name that is not in its normalized spelling with `filename-not-normalized` (400),
 * naming the spelling to use in `detail` and in the `normalized-filename` extension member. For
 * new uploads: the sdist spec says the name "must be" `{normalized name}-{normalized version}.tar.gz`
 * and code producing sdists MUST use it; the wheel spec asks producers to normalize ("should") and
 * consumers to still accept legacy names, so listing and installing keep accepting them, but an
 * index may refuse new ones, as PyPI does. Returns the parsed name; throws `invalid-filename` first.
 */
export function checkFilenameNormalized(filename: unknown): DistributionFilename {
  const parsed = parseDistributionFilename(filename);
  const normalized = normalizedFilename(filename);
  if (filename === normalized) return parsed;
  const message =
    `The file name ${show(filename)} is not normalized; upload it as ${show(normalized)} ` +
    '(the project name lowercase with "_" for runs of "-", "_" and ".", the version in PEP 440 normal form, lowercase tags).';
  throw new ProblemError('filename-not-normalized', message, {
    errors: [{ source: '/filename', message }],
    extensions: { 'normalized-filename': normalized },
  });
}

/** `{digits}{rest}` with the digits' leading zeros dropped: the spec sorts build tags as (int, str). */
const canonicalBuild = (build: string): string => build.replace(/^0+(?=[0-9])/, '');

/** A compressed tag set as a set: lowercase, without repeats, sorted. */
const canonicalTagSet = (tags: readonly string[]): string => [...new Set(tags.map((t) => t.toLowerCase()))].sort().join('.');

/**
 * The canonical identity of a distribution file: two files with the same identity are the same
 * distribution to an installer, so an index must never publish both for a project (PEP 694
 * "Atomic Publication and Conflicts": published artifacts are immutable). Equal identities:
 * - sdist: the normalized project name and the canonical version (PEP 440 equality, trailing `.0`
 *   release segments dropped, as `packaging.utils.canonicalize_version` does). One sdist per
 *   release, as on PyPI.
 * - wheel: those, plus the build tag compared as the spec sorts it (leading digits as a number,
 *   then the rest), plus the set of tags the compressed tag sets expand to. The expansion is the
 *   product of the python, ABI and platform sets, and a product of non-empty sets determines its
 *   factors, so each set is written sorted instead of the (possibly very long) product.
 * So `Foo-1.0-py3-none-any.whl`, `foo-1.0.0-py3-none-any.whl` and `foo-1.0-PY3-none-any.whl` share
 * one identity, `foo-1.0-1-py3-none-any.whl` (a build tag: the spec's way to supersede) does not.
 * Throws `invalid-filename`.
 */
export function distributionIdentity(filename: unknown): string {
  const parsed = parseDistributionFilename(filename);
  const release = `${parsed.name} ${releaseKey(parsed.version)}`;
  if (parsed.kind === 'sdist') return `sdist ${release}`;
  const build = parsed.build === undefined ? '-' : canonicalBuild(parsed.build);
  const tags = [parsed.pythonTags, parsed.abiTags, parsed.platformTags].map(canonicalTagSet).join('-');
  return `wheel ${release} ${build} ${tags}`;
}
