/**
 * Wheels (PyPA "Binary distribution format"): a zip archive with exactly one top-level
 * `{name}-{version}.dist-info/` directory holding `METADATA` and `WHEEL`. Read with yauzl through
 * random access: the end records, the central directory, every local header and the METADATA
 * member, never the members' data. The archive must be one unambiguous zip (zip-end.ts,
 * zip-layout.ts) with safe, unique member paths (member-paths.ts), so that what the index
 * validates and serves as METADATA is what pip installs.
 */
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import type { ArtifactUnderValidation } from '@pep694/core';
import type { DistributionLimits } from './limits.js';
import { parseMetadataHeaders } from './metadata.js';
import { describe, problem, type ArchiveOutcome } from './outcome.js';
import { ForwardReader } from './forward-reader.js';
import { ArtifactReader } from './reader.js';
import { MemberPathSet, pathProblem } from './member-paths.js';
import { checkMetadataFields, clip, readRequiresPython, stemNamesRelease, type Release } from './release.js';
import { readZipEnd } from './zip-end.js';
import { CD_RECORD_SIZE, checkZipLayout, type CentralRecord } from './zip-layout.js';
import { entryName } from './zip-names.js';

function openZip(reader: ArtifactReader, size: number): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    // autoClose off: METADATA is opened after the directory has been listed. decodeStrings off:
    // names are decoded as Python's zipfile does (zip-names.ts), not renamed by yauzl.
    yauzl.fromRandomAccessReader(
      reader,
      size,
      { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true },
      (err, zip) => (err ? reject(err) : resolve(zip)),
    );
  });
}

interface Listing {
  readonly records: readonly CentralRecord[];
  readonly distInfoDirs: ReadonlySet<string>;
  /** Entries named `<top>/<file>` for files we read, keyed by that path (names are unique). */
  readonly members: ReadonlyMap<string, Entry>;
}

/** Lists the central directory, refusing at the first name that is not a safe, unique member path. */
function listEntries(zip: ZipFile): Promise<Listing | { readonly problem: ArchiveOutcome }> {
  return new Promise((resolve, reject) => {
    const records: CentralRecord[] = [];
    const distInfoDirs = new Set<string>();
    const members = new Map<string, Entry>();
    const paths = new MemberPathSet();
    zip.on('error', reject);
    zip.on('end', () => resolve({ records, distInfoDirs, members }));
    zip.on('entry', (entry: Entry) => {
      const decoded = entryName(entry);
      if (!decoded.ok)
        return resolve({
          problem: problem(clip(decoded.shown), `the wheel entry ${JSON.stringify(clip(decoded.shown))} ${decoded.message}`),
        });
      const name = decoded.name;
      const clash = pathProblem(name) ?? paths.add(name);
      if (clash) return resolve({ problem: problem(clip(name), `the wheel entry ${JSON.stringify(clip(name))} ${clash}`) });
      records.push({
        name,
        nameRaw: entry.fileNameRaw,
        offset: entry.relativeOffsetOfLocalHeader,
        flags: entry.generalPurposeBitFlag,
        method: entry.compressionMethod,
        crc32: entry.crc32,
        compressedSize: entry.compressedSize,
        uncompressedSize: entry.uncompressedSize,
        recordBytes: CD_RECORD_SIZE + entry.fileNameLength + entry.extraFieldLength + entry.fileCommentLength,
      });
      const slash = name.indexOf('/');
      const top = slash < 0 ? '' : name.slice(0, slash);
      if (top.endsWith('.dist-info')) {
        distInfoDirs.add(top);
        const rest = name.slice(slash + 1);
        if (rest === 'METADATA' || rest === 'WHEEL') members.set(name, entry);
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

export async function validateWheel(
  artifact: ArtifactUnderValidation,
  release: Release,
  limits: DistributionLimits,
): Promise<ArchiveOutcome> {
  const file = artifact.filename;
  const unreadable = (err: unknown) => problem(file, `the wheel is not a readable zip archive: ${describe(err)}`);
  const reader = new ArtifactReader(artifact, artifact.size);
  // The end records first: they decide which archive this file is (zip-end.ts).
  const end = await readZipEnd((position, length) => reader.readAt(position, length), artifact.size);
  if (!end.ok) return problem(file, end.message);
  if (end.end.entryCount > limits.maxEntries) {
    return problem(file, `the wheel has ${end.end.entryCount} entries; this index accepts at most ${limits.maxEntries}`);
  }
  let zip: ZipFile;
  try {
    zip = await openZip(reader, artifact.size);
  } catch (err) {
    return unreadable(err);
  }
  try {
    let listed: Awaited<ReturnType<typeof listEntries>>;
    try {
      listed = await listEntries(zip);
    } catch (err) {
      return unreadable(err);
    }
    if ('problem' in listed) return listed.problem;
    const listing: Listing = listed;
    // Local headers are spread over the whole file: one stream per run of them (forward-reader.ts).
    const headers = new ForwardReader(
      artifact,
      listing.records.map((r) => r.offset),
      end.end.cdOffset,
    );
    let layout: Awaited<ReturnType<typeof checkZipLayout>>;
    try {
      layout = await checkZipLayout(listing.records, end.end, (position, length) => headers.readAt(position, length));
    } finally {
      headers.close();
    }
    if (layout) return problem(layout.entry === undefined ? file : clip(layout.entry), layout.message);
    const dirs = [...listing.distInfoDirs];
    if (dirs.length === 0) return problem(file, 'the wheel has no top-level .dist-info directory');
    if (dirs.length > 1) {
      const names = dirs
        .slice(0, 5)
        .map((d) => JSON.stringify(clip(d)))
        .join(', ');
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
    const entry = listing.members.get(path);
    if (!entry) return problem(path, `the wheel has no ${path}`);
    if (!listing.members.has(`${dir}/WHEEL`)) return problem(`${dir}/WHEEL`, `the wheel must have exactly one ${dir}/WHEEL`);
    if (entry.uncompressedSize > limits.maxMetadataBytes) {
      return problem(
        path,
        `${path} declares ${entry.uncompressedSize} bytes; this index accepts core metadata up to ${limits.maxMetadataBytes} bytes`,
      );
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
