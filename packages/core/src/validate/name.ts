/**
 * Project names (PyPA "Names and normalization", core-metadata `Name`).
 */
import { ProblemError } from '../problem.js';

// JS `$` without the `m` flag only matches at the very end, like Python's `\Z`: no trailing newline.
/** Quotes a client value for a message: strings JSON-quoted and cut at 100 characters, else the type. */
const show = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v) : `(a value of type ${typeof v})`;

const NAME_RE = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;

/** True when `name` is a valid project name (ASCII letters, digits, `._-`, alphanumeric ends). */
export function isValidProjectName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name);
}

/** PEP 503 normalized form: runs of `-_.` become `-`, lowercased. */
export function normalizeName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

/** The form used in wheel and sdist file names: normalized, with `-` escaped as `_`. */
export function wheelEscapeName(name: string): string {
  return normalizeName(name).replace(/-/g, '_');
}

/** Says which rule an invalid name breaks, so the client can fix it. */
function nameProblem(name: unknown): string {
  if (typeof name !== 'string') return 'must be a string';
  if (name === '') return 'must not be empty';
  if (/[^A-Za-z0-9._-]/.test(name)) {
    return 'may only contain ASCII letters, digits, ".", "_" and "-"';
  }
  return 'must start and end with an ASCII letter or digit';
}

/** Validates a project name and returns its normalized form; throws `invalid-name`. */
export function parseProjectName(name: unknown, source = '/name'): string {
  if (isValidProjectName(name)) return normalizeName(name);
  const message = `The project name ${show(name)} ${nameProblem(name)}.`;
  throw new ProblemError('invalid-name', message, { errors: [{ source, message }] });
}
