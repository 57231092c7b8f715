/**
 * Comparing what an archive says about itself with the publishing session it was uploaded to:
 * names after PyPA normalization, versions by PEP 440 equality (core's `normalizeName` and
 * `versionsEqual`), so legacy spellings (`Demo.Pkg_Extra`, `1.0`) pass when they mean the same.
 */
import { checkSpecifierSet, isValidProjectName, normalizeName, versionsEqual } from '@pep694/core';
import type { DistributionLimits } from './limits.js';
import { singleField, type MetadataHeaders } from './metadata.js';

export interface Release {
  /** Normalized project name of the session. */
  readonly project: string;
  readonly version: string;
}

/** `versionsEqual` without throwing: an invalid version is simply not equal. */
export function sameVersion(a: string, b: string): boolean {
  try {
    return versionsEqual(a, b);
  } catch {
    return false;
  }
}

/**
 * Whether `{name}-{version}` (a `.dist-info` directory stem or an sdist's top-level directory)
 * names the release. Tries every dash as the separator: escaped names have no dash, but legacy
 * sdist directories (`demo-pkg-1.0.0`) do.
 */
export function stemNamesRelease(stem: string, release: Release): boolean {
  for (let i = stem.indexOf('-'); i > 0; i = stem.indexOf('-', i + 1)) {
    const name = stem.slice(0, i);
    const version = stem.slice(i + 1);
    if (isValidProjectName(name) && normalizeName(name) === release.project && sameVersion(version, release.version)) return true;
  }
  return false;
}

/** A field that is longer than `max` characters, as a message, or undefined. */
const tooLong = (what: string, field: string, value: string | undefined, max: number): string | undefined =>
  value !== undefined && value.length > max
    ? `${what}'s ${field} is ${value.length} characters long; this index accepts at most ${max}`
    : undefined;

/**
 * Checks the Metadata-Version, Name and Version fields; returns what differs, or [] when all match.
 * Lengths are checked first, so that no parser sees a value longer than the limit.
 */
export function checkMetadataFields(headers: MetadataHeaders, release: Release, what: string, limits: DistributionLimits): string[] {
  const long = (['Metadata-Version', 'Name', 'Version'] as const).flatMap((field) => {
    const values = headers.get(field.toLowerCase()) ?? [];
    const problem = values.map((v) => tooLong(what, field, v, limits.maxNameVersionLength)).find((p) => p !== undefined);
    return problem === undefined ? [] : [problem];
  });
  if (long.length > 0) return long;
  const problems: string[] = [];
  const mv = singleField(headers, 'Metadata-Version', what);
  if (mv.error) problems.push(mv.error);
  else if (mv.value === undefined) problems.push(`${what} has no Metadata-Version field`);
  else if (!/^\d+\.\d+$/.test(mv.value))
    problems.push(`${what} says Metadata-Version ${JSON.stringify(mv.value)}, which is not a MAJOR.MINOR version`);

  const name = singleField(headers, 'Name', what);
  if (name.error) problems.push(name.error);
  else if (name.value === undefined) problems.push(`${what} has no Name field`);
  else if (!isValidProjectName(name.value) || normalizeName(name.value) !== release.project) {
    problems.push(`${what} says Name ${JSON.stringify(clip(name.value))}, the session is for ${JSON.stringify(release.project)}`);
  }

  const version = singleField(headers, 'Version', what);
  if (version.error) problems.push(version.error);
  else if (version.value === undefined) problems.push(`${what} has no Version field`);
  else if (!sameVersion(version.value, release.version)) {
    problems.push(`${what} says Version ${JSON.stringify(clip(version.value))}, the session is for ${JSON.stringify(release.version)}`);
  }
  return problems;
}

/**
 * The `Requires-Python` field (core metadata "Requires-Python": a PEP 440 version specifier set),
 * which the index shows on every project page: at most one, bounded in length, and valid. An empty
 * value is the same as no field.
 */
export function readRequiresPython(headers: MetadataHeaders, what: string, limits: DistributionLimits): { value?: string; error?: string } {
  const rp = singleField(headers, 'Requires-Python', what);
  if (rp.error !== undefined || rp.value === undefined || rp.value === '') return rp.error !== undefined ? { error: rp.error } : {};
  const long = tooLong(what, 'Requires-Python', rp.value, limits.maxRequiresPythonLength);
  if (long) return { error: long };
  const check = checkSpecifierSet(rp.value);
  if (!check.ok) {
    return {
      error: `${what}'s Requires-Python ${JSON.stringify(clip(rp.value))} is not a PEP 440 version specifier set: ${JSON.stringify(clip(check.clause))} ${check.reason}`,
    };
  }
  return { value: rp.value };
}

/** Keeps archive-controlled text in messages short. */
export const clip = (s: string): string => (s.length > 100 ? `${s.slice(0, 100)}…` : s);
