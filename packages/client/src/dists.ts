/**
 * The files to upload: each distribution's project name and version from its file name (wheel:
 * binary distribution format; sdist: PEP 625), grouped into one release per name and version
 * (PEP 694 "Multiple Sessions": one publishing session per name-version pair), its sha256, and the
 * PEP 740 attestations found next to it.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileReadBuffers, openFileReader } from '@pep694/core/node-http';
import { UsageError } from './errors.js';

export interface Dist {
  readonly path: string;
  readonly filename: string;
  /** The project name as the file name spells it. */
  readonly name: string;
  readonly version: string;
  readonly kind: 'wheel' | 'sdist';
  readonly size: number;
}

export interface Release {
  /** The normalized project name (PEP 503). */
  readonly name: string;
  readonly version: string;
  readonly dists: readonly Dist[];
}

/** PEP 503 normalization: lowercase, runs of `-`, `_`, `.` to one `-`. */
export const normalizeName = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-');

const WHEEL = /^(?<name>[^-]+)-(?<version>[^-]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$/;
const SDIST = /^(?<name>.+)-(?<version>[^-]+)\.(?:tar\.gz|zip)$/;

/** Name, version and kind from a distribution's file name, or undefined when it is neither a wheel nor an sdist name. */
export function parseDistFilename(filename: string): { name: string; version: string; kind: 'wheel' | 'sdist' } | undefined {
  const w = WHEEL.exec(filename);
  if (w?.groups) return { name: w.groups['name']!, version: w.groups['version']!, kind: 'wheel' };
  const s = SDIST.exec(filename);
  if (s?.groups) return { name: s.groups['name']!, version: s.groups['version']!, kind: 'sdist' };
  return undefined;
}

/**
 * Reads the paths given on the command line into releases; a path that is not a distribution is a
 * UsageError. `dist/*` may hold more than distributions: PEP 740 attestations (`.attestation`,
 * sent with their dist) and GPG signatures (`.asc`, which older release jobs still make and twine
 * still takes). A signature is left out, and `onIgnored` says why: Upload 2.0 has no place for
 * one, and PyPI has not accepted them since 2023.
 */
export async function collectReleases(
  paths: readonly string[],
  opts: { readonly onIgnored?: (path: string, reason: string) => void } = {},
): Promise<Release[]> {
  const byKey = new Map<string, { name: string; version: string; dists: Dist[] }>();
  const seen = new Set<string>();
  for (const path of paths) {
    const filename = basename(path);
    if (filename.endsWith('.attestation')) continue; // they travel with their dist
    if (filename.endsWith('.asc') && parseDistFilename(filename.slice(0, -'.asc'.length))) {
      opts.onIgnored?.(path, 'a GPG signature, not sent: Upload 2.0 has no place for one (PyPI no longer takes them either)');
      continue;
    }
    const parsed = parseDistFilename(filename);
    if (!parsed) throw new UsageError(`${path} is not a wheel (.whl) or an sdist (.tar.gz) file name`);
    if (seen.has(filename)) throw new UsageError(`${filename} is given twice`);
    seen.add(filename);
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
    if (!st.isFile()) throw new UsageError(`${path} is not a file`);
    const name = normalizeName(parsed.name);
    const key = `${name}\0${parsed.version}`;
    const release = byKey.get(key) ?? { name, version: parsed.version, dists: [] };
    release.dists.push({ path, filename, name: parsed.name, version: parsed.version, kind: parsed.kind, size: st.size });
    byKey.set(key, release);
  }
  if (byKey.size === 0) throw new UsageError('no distributions to upload');
  return [...byKey.values()];
}

/**
 * The file's sha256, hex, read in one pass into one reused buffer: no allocation per read, so no
 * garbage for the collector (a read stream allocates a new buffer for every chunk). `size` (the
 * file's size, when the caller knows it) picks the buffer's size and how it is read
 * (`fileReadBuffers`, `openFileReader`); without it the file is stat'ed.
 */
export async function sha256File(path: string, opts: { readonly signal?: AbortSignal; readonly size?: number } = {}): Promise<string> {
  opts.signal?.throwIfAborted();
  const hash = createHash('sha256');
  const size = opts.size ?? (await stat(path)).size;
  const file = await openFileReader(path, size);
  // From the pool the uploads read files with: a file is hashed, then uploaded, so one set of
  // buffers serves both.
  const buf = fileReadBuffers.take(size);
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      const bytesRead = await file.read(buf, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
    fileReadBuffers.giveBack(buf);
  }
  return hash.digest('hex');
}

/**
 * The PEP 740 attestations of a distribution: every `<dist>.<anything>.attestation` file next to
 * it (what Trusted Publishing tooling writes, e.g. `<dist>.publish.attestation`, and what twine's
 * `--attestations` reads), each one attestation object, in file name order.
 */
export async function findAttestations(distPath: string): Promise<{ files: string[]; attestations: unknown[] }> {
  const dir = dirname(distPath);
  const prefix = `${basename(distPath)}.`;
  const names = (await readdir(dir))
    .filter((n) => n.startsWith(prefix) && n.endsWith('.attestation') && n.length > prefix.length + 12)
    .sort();
  const attestations: unknown[] = [];
  for (const n of names) {
    const text = await readFile(join(dir, n), 'utf8');
    try {
      attestations.push(JSON.parse(text));
    } catch {
      throw new UsageError(`${join(dir, n)} is not JSON (a PEP 740 attestation object is expected)`);
    }
  }
  return { files: names.map((n) => join(dir, n)), attestations };
}
