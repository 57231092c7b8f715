/**
 * PEP 440 version specifier sets (PyPA "Version specifiers"), e.g. `>=3.8, !=3.9.1, <4`: the
 * format of `Requires-Python` in core metadata and of `requires-python` in the Simple API.
 *
 * Each clause is parsed by `@renovatebot/pep440` (a port of `packaging`'s `Specifier` regex: an
 * operator `~=`, `==`, `!=`, `<=`, `>=`, `<`, `>` or `===`, optional whitespace, then a version;
 * `.*` only after `==`/`!=` and not with a dev or local segment; local versions only with
 * `==`/`!=`; `~=` with at least two release segments; `===` with any string). The set is read as
 * `packaging.specifiers.SpecifierSet` reads it (what PyPI and pip use): split at commas, each
 * clause stripped, empty clauses skipped, so `""` is the empty set that every version satisfies.
 */
import { explain, RANGE_PATTERN } from '@renovatebot/pep440';

const CLAUSE = new RegExp(`^${RANGE_PATTERN}$`, 'i');

export type SpecifierSetCheck =
  { readonly ok: true; readonly clauses: readonly string[] } | { readonly ok: false; readonly clause: string; readonly reason: string };

/** Why one stripped, non-empty clause is not a PEP 440 version specifier, or undefined if it is one. */
function clauseProblem(clause: string): string | undefined {
  const m = CLAUSE.exec(clause);
  const g = m?.groups;
  if (!g) {
    return /^(?:===|~=|==|!=|<=|>=|<|>)/.test(clause)
      ? 'is not an operator followed by a PEP 440 version'
      : 'does not start with a comparison operator (~=, ==, !=, <=, >=, <, >, ===)';
  }
  const op = g['operator']!;
  if (g['legacy'] !== undefined)
    return op === '==='
      ? undefined
      : `has ${JSON.stringify(g['legacy'].slice(0, 50))}, which is not a PEP 440 version (only === takes an arbitrary string)`;
  const version = explain(g['version']);
  if (!version) return 'is not an operator followed by a PEP 440 version';
  const equality = op === '==' || op === '!=' || op === '===';
  if (g['prefix'] !== undefined) {
    if (op !== '==' && op !== '!=') return 'uses a .* prefix match, which only == and != allow';
    if (version.is_devrelease || version.local != null) return 'uses a .* prefix match after a dev or local segment';
  }
  if (version.local != null && !equality) return 'has a local version label, which only == and != allow';
  if (op === '~=' && version.release.length < 2) return 'uses ~= with a single release segment (~=1 is not allowed; write ~=1.0 or >=1)';
  return undefined;
}

/** Checks a specifier set; on failure names the first clause that is wrong and why. */
export function checkSpecifierSet(value: string): SpecifierSetCheck {
  const clauses: string[] = [];
  for (const raw of value.split(',')) {
    const clause = raw.trim();
    if (clause === '') continue;
    const reason = clauseProblem(clause);
    if (reason !== undefined) return { ok: false, clause, reason };
    clauses.push(clause);
  }
  return { ok: true, clauses };
}

export const isValidSpecifierSet = (value: string): boolean => checkSpecifierSet(value).ok;
