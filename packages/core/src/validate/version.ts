/**
 * PEP 440 versions, parsed by `@renovatebot/pep440`, with guards for the places where that
 * library's JavaScript numbers differ from Python's `packaging`.
 */
import { eq, explain } from '@renovatebot/pep440';
import { ProblemError } from '../problem.js';

/** Quotes a client value for a message: strings JSON-quoted and cut at 100 characters, else the type. */
const show = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v) : `(a value of type ${typeof v})`;

export interface ParsedVersion {
  /** Normalized public version, e.g. `2!1.0.post1.dev3`. */
  readonly public: string;
  /** Normalized local label without `+`, e.g. `local.1`, or null. */
  readonly local: string | null;
  /** The full normalized version, e.g. `2!1.0.post1.dev3+local.1`. */
  readonly canonical: string;
}

/**
 * The library coerces local segments with `Number()` (so `+1e5` became `+100000`, `+0x1f` became
 * `+31`), and its `clean()` joins them with `,`. PEP 440: numeric parts lose leading zeros,
 * alphanumeric parts are lowercased, separators become `.`.
 */
function normalizeLocal(raw: string): string {
  return raw
    .split(/[-_.]/)
    .map((part) => (/^[0-9]+$/.test(part) ? part.replace(/^0+(?=[0-9])/, '') : part.toLowerCase()))
    .join('.');
}

function fail(version: unknown, why: string, source: string): never {
  const message = `The version ${show(version)} ${why}.`;
  throw new ProblemError('invalid-version', message, { errors: [{ source, message }] });
}

/**
 * Parses a PEP 440 version. A leading `v` is accepted (PEP 440 normalization allows it);
 * surrounding whitespace is not: the version must be exactly the string sent.
 */
export function parseVersionParts(version: unknown, source = '/version'): ParsedVersion {
  if (typeof version !== 'string') return fail(version, 'must be a string', source);
  if (version === '') return fail(version, 'must not be empty', source);
  if (version.trim() !== version) return fail(version, 'must not have surrounding whitespace', source);
  // The library's default regex is anchored with `^…$` (no trailing newline) and no whitespace.
  const info = explain(version);
  if (!info) return fail(version, 'is not a valid PEP 440 version', source);
  const plus = version.indexOf('+');
  const publicRaw = plus < 0 ? version : version.slice(0, plus);
  // Numbers above 2^53 lose digits in the library (1.99999999999999999999 → 1.100000000000000000000).
  if ((publicRaw.match(/[0-9]+/g) ?? []).some((n) => !Number.isSafeInteger(Number(n)))) {
    return fail(version, `has a number larger than ${Number.MAX_SAFE_INTEGER}`, source);
  }
  const local = plus < 0 ? null : normalizeLocal(version.slice(plus + 1));
  return { public: info.public, local, canonical: local === null ? info.public : `${info.public}+${local}` };
}

/** Validates a PEP 440 version and returns its normalized form; throws `invalid-version`. */
export function parseVersion(version: unknown, source = '/version'): string {
  return parseVersionParts(version, source).canonical;
}

/**
 * PEP 440 equality (`1.0` == `1.0.0`, `1.0.0-alpha1` == `1.0.0a1`). Local labels must be equal
 * too, as for `packaging.version.Version`. Throws `invalid-version` if either is invalid.
 */
export function versionsEqual(a: string, b: string): boolean {
  const pa = parseVersionParts(a);
  const pb = parseVersionParts(b);
  // Public parts are safe to hand to the library; it pads release segments with zeros.
  return pa.local === pb.local && eq(pa.public, pb.public);
}

/**
 * A key under which PEP 440-equal versions coincide: the canonical form with trailing `.0` release
 * segments dropped (`1.0.0` and `1.0` → `1`). Stores use it for "the same name-version pair".
 */
export function releaseKey(version: string): string {
  const { public: pub, local } = parseVersionParts(version);
  const m = /^((?:\d+!)?)(\d+(?:\.\d+)*)(.*)$/.exec(pub);
  if (!m) return parseVersion(version);
  const release = (m[2] ?? '').replace(/(?:\.0+)+$/, '');
  return `${m[1] ?? ''}${release}${m[3] ?? ''}${local === null ? '' : `+${local}`}`;
}
