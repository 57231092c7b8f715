/**
 * Wheels (PyPA "Binary distribution format"): a zip archive with exactly one top-level
 * `{name}-{version}.dist-info/` directory holding `METADATA` and `WHEEL`. Read with yauzl through
 * random access: the central directory and the METADATA member only, never the whole file.
 */
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import type { ArtifactUnderValidation } from '@pep694/core';
import type { DistributionLimits } from './limits.js';
import { parseMetadataHeaders } from './metadata.js';
import { describe, problem, type ArchiveOutcome } from './outcome.js';
import { ArtifactReader } from './reader.js';
import { checkMetadataFields, clip, readRequiresPython, stemNamesRelease, type Release } from './release.js';

function openZip(reader: ArtifactReader, size: number): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    // autoClose off: METADATA is opened after the directory has been listed.
    yauzl.fromRandomAccessReader(reader, size, { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true }, (err, zip) =>
      err ? reject(err) : resolve(zip),
    );
  });
}

interface Listing {
  readonly distInfoDirs: ReadonlySet<string>;
  /** Entries named `<top>/<file>` for files we read, keyed by that path. */
  readonly members: ReadonlyMap<string, Entry[]>;
}

function listEntries(zip: ZipFile): Promise<Listing> {
  return new Promise((resolve, reject) => {
    const distInfoDirs = new Set<string>();
    const members = new Map<string, Entry[]>();
    zip.on('error', reject);
    zip.on('end', () => resolve({ distInfoDirs, members }));
    zip.on('entry', (entry: Entry) => {
      const slash = entry.fileName.indexOf('/');
      const top = slash < 0 ? '' : entry.fileName.slice(0, slash);
      if (top.endsWith('.dist-info')) {
        distInfoDirs.add(top);
        const rest = entry.fileName.slice(slash + 1);
        if (rest === 'METADATA' || rest === 'WHEEL') members.set(entry.fileName, [...(members.get(entry.fileName) ?? []), entry]);
      }
      zip.readEntry();
    });
    zip.readEntry();
  });
}

/** Reads one member, stopping as soon as more than `max` inflated bytes arrive. */
function readMember(zip: ZipFile, entry: Entry, max: number): Promise<{ bytes: Buffer } | { tooBig: true }> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      let total = 0;
      stream.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > max) {
          stream.destroy();
          resolve({ tooBig: true });
        } else chunks.push(chunk);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve({ bytes: Buffer.concat(chunks, total) }));
    });
  });
}

export async function validateWheel(artifact: ArtifactUnderValidation, release: Release, limits: DistributionLimits): Promise<ArchiveOutcome> {
  const file = artifact.filename;
  const unreadable = (err: unknown) => problem(file, `the wheel is not a readable zip archive: ${describe(err)}`);
  const reader = new ArtifactReader(artifact, artifact.size);
  let zip: ZipFile;
  try {
    zip = await openZip(reader, artifact.size);
  } catch (err) {
    return unreadable(err);
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      return problem(file, `the wheel has ${zip.entryCount} entries; this index accepts at most ${limits.maxEntries}`);
    }
    let listing: Listing;
    try {
      listing = await listEntries(zip);
    } catch (err) {
      return unreadable(err);
    }
    const dirs = [...listing.distInfoDirs];
    if (dirs.length === 0) return problem(file, 'the wheel has no top-level .dist-info directory');
    if (dirs.length > 1) {
      const names = dirs.slice(0, 5).map((d) => JSON.stringify(clip(d))).join(', ');
      return problem(file, `the wheel has ${dirs.length} top-level .dist-info directories (${names}); a wheel has exactly one`);
    }
    const dir = dirs[0]!;
    if (!stemNamesRelease(dir.slice(0, -'.dist-info'.length), release)) {
      return problem(
        clip(dir),
        `the wheel's .dist-info directory is ${JSON.stringify(clip(dir))}; for this session it must be named {name}-{version}.dist-info with name ${JSON.stringify(release.project)} and version ${JSON.stringify(release.version)}`,
      );
    }
    const path = `${dir}/METADATA`;
    const found = listing.members.get(path) ?? [];
    if (found.length === 0) return problem(path, `the wheel has no ${path}`);
    if (found.length > 1) return problem(path, `the wheel has ${found.length} entries named ${path}; it must have one`);
    if ((listing.members.get(`${dir}/WHEEL`) ?? []).length !== 1) return problem(`${dir}/WHEEL`, `the wheel must have exactly one ${dir}/WHEEL`);
    const entry = found[0]!;
    if (entry.uncompressedSize > limits.maxMetadataBytes) {
      return problem(path, `${path} declares ${entry.uncompressedSize} bytes; this index accepts core metadata up to ${limits.maxMetadataBytes} bytes`);
    }
    let read: Awaited<ReturnType<typeof readMember>>;
    try {
      read = await readMember(zip, entry, limits.maxMetadataBytes);
    } catch (err) {
      return problem(path, `${path} cannot be read: ${describe(err)}`);
    }
    if ('tooBig' in read) return problem(path, `${path} inflates to more than ${limits.maxMetadataBytes} bytes`);
    if (crc32(read.bytes) >>> 0 !== entry.crc32 >>> 0) return problem(path, `${path} does not match its CRC-32; the archive is corrupt`);

    const parsed = parseMetadataHeaders(read.bytes, 'METADATA');
    if (!parsed.ok) return problem(path, parsed.message);
    const mismatches = checkMetadataFields(parsed.headers, release, 'METADATA', limits);
    if (mismatches.length > 0) return { ok: false, errors: mismatches.map((message) => ({ source: path, message })) };
    const rp = readRequiresPython(parsed.headers, 'METADATA', limits);
    if (rp.error !== undefined) return problem(path, rp.error);
    return { ok: true, metadata: read.bytes, ...(rp.value ? { requiresPython: rp.value } : {}) };
  } finally {
    zip.close();
  }
}
