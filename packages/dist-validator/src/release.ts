/**
 * Comparing what an archive says about itself with the publishing session it was uploaded to:
 * names after PyPA normalization, versions by PEP 440 equality (core's `normalizeName` and
 * `versionsEqual`), so legacy spellings (`Demo.Pkg_Extra`, `1.0`) pass when they mean the same.
 */
import { isValidProjectName, normalizeName, versionsEqual } from '@pep694/core';
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

/** Checks the Metadata-Version, Name and Version fields; returns what differs, or [] when all match. */
export function checkMetadataFields(headers: MetadataHeaders, release: Release, what: string): string[] {
  const problems: string[] = [];
  const mv = singleField(headers, 'Metadata-Version', what);
  if (mv.error) problems.push(mv.error);
  else if (mv.value === undefined) problems.push(`${what} has no Metadata-Version field`);
  else if (!/^\d+\.\d+$/.test(mv.value)) problems.push(`${what} says Metadata-Version ${JSON.stringify(mv.value)}, which is not a MAJOR.MINOR version`);

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

/** Keeps archive-controlled text in messages short. */
export const clip = (s: string): string => (s.length > 100 ? `${s.slice(0, 100)}…` : s);
