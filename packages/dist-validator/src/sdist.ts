/**
 * Source distributions (PyPA "Source distribution format"): a gzipped tar whose single top-level
 * directory `{name}-{version}/` holds `PKG-INFO`. Read as one stream (gzip has no index) with
 * node's zlib and tar-stream. Every member header is checked (sdist-members.ts), so the whole tar
 * is read; member data is skipped, PKG-INFO's read. The work is bounded by the decompressed bytes
 * (inflate-limit.ts) and by `maxEntries`; the archive must end where Python's tarfile ends it
 * (tar-end.ts).
 */
import { createGunzip } from 'node:zlib';
import tar, { type Header } from 'tar-stream';
import type { ArtifactUnderValidation } from '@pep694/core';
import { INFLATE_CHUNK, inflateBudget, inflateLimit, InflateLimitExceeded } from './inflate-limit.js';
import type { DistributionLimits } from './limits.js';
import { parseMetadataHeaders } from './metadata.js';
import { describe, problem, type ArchiveOutcome } from './outcome.js';
import { checkMetadataFields, readRequiresPython, type Release } from './release.js';
import { SdistMembers } from './sdist-members.js';
import { TarEndWatch } from './tar-end.js';

const BLOCK = 512;

async function readAtMost(entry: AsyncIterable<unknown>, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const data of entry) {
    const chunk = data as Buffer;
    total += chunk.length;
    if (total > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** Where tar-stream takes a member's data to end: after its header, padded to blocks; directories and empty members have none. */
function dataEnd(headerAt: number, header: Header): number {
  const size = header.size ?? 0;
  const data = size === 0 || header.type === 'directory' ? 0 : Math.ceil(size / BLOCK) * BLOCK;
  return headerAt + BLOCK + data;
}

export async function validateSdist(
  artifact: ArtifactUnderValidation,
  release: Release,
  limits: DistributionLimits,
): Promise<ArchiveOutcome> {
  const file = artifact.filename;
  const source = await artifact.read();
  const gunzip = createGunzip({ chunkSize: INFLATE_CHUNK });
  const limit = inflateLimit(inflateBudget(artifact.size, limits), artifact.size, limits);
  const end = new TarEndWatch();
  const extract = tar.extract();
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
  };
  for (const stream of [source, gunzip, limit, end]) stream.on('error', fail);
  source.pipe(gunzip).pipe(limit).pipe(end).pipe(extract);

  const members = new SdistMembers(release);
  let count = 0;
  let pkgInfo: ArchiveOutcome | undefined;
  try {
    for await (const entry of extract) {
      count += 1;
      if (count > limits.maxEntries)
        return problem(file, `the sdist has more than ${limits.maxEntries} members; this index reads at most ${limits.maxEntries}`);
      const hidden = end.member(entry.offset, dataEnd(entry.offset, entry.header), entry.header.name);
      if (hidden) return problem(file, hidden);
      const verdict = members.add(entry.header);
      if (!verdict.ok) return problem(verdict.source, verdict.message);
      if (!verdict.pkgInfo) {
        entry.resume();
        continue;
      }
      const path = verdict.path;
      if ((entry.header.size ?? 0) > limits.maxMetadataBytes) {
        return problem(
          path,
          `${path} is ${entry.header.size} bytes; this index accepts core metadata up to ${limits.maxMetadataBytes} bytes`,
        );
      }
      const bytes = await readAtMost(entry, limits.maxMetadataBytes);
      if (!bytes) return problem(path, `${path} is larger than ${limits.maxMetadataBytes} bytes`);
      // Checked now, so that a mismatch is reported without reading the rest.
      const checked = checkPkgInfo(path, bytes, release, limits);
      if (!checked.ok) return checked;
      pkgInfo = checked;
    }
  } catch (err) {
    const cause = failure ?? err;
    if (cause instanceof InflateLimitExceeded) return problem(file, cause.message);
    return problem(file, `the sdist is not a readable .tar.gz archive: ${describe(cause)}`);
  } finally {
    source.unpipe();
    source.destroy();
    gunzip.destroy();
    limit.destroy();
    end.destroy();
    extract.destroy();
  }
  if (failure) {
    if (failure instanceof InflateLimitExceeded) return problem(file, failure.message);
    return problem(file, `the sdist is not a readable .tar.gz archive: ${describe(failure)}`);
  }
  const trailing = end.finish();
  if (trailing) return problem(file, trailing);
  const link = members.finish();
  if (link) return problem(link.source, link.message);
  if (!pkgInfo) return problem(file, `the sdist has no PKG-INFO in a top-level {name}-{version}/ directory (read ${count} members)`);
  return pkgInfo;
}

/** PKG-INFO's Metadata-Version, Name and Version against the session; its bytes and Requires-Python. */
function checkPkgInfo(path: string, bytes: Buffer, release: Release, limits: DistributionLimits): ArchiveOutcome {
  const parsed = parseMetadataHeaders(bytes, 'PKG-INFO');
  if (!parsed.ok) return problem(path, parsed.message);
  const mismatches = checkMetadataFields(parsed.headers, release, 'PKG-INFO', limits);
  if (mismatches.length > 0) return { ok: false, errors: mismatches.map((message) => ({ source: path, message })) };
  const rp = readRequiresPython(parsed.headers, 'PKG-INFO', limits);
  if (rp.error !== undefined) return problem(path, rp.error);
  return { ok: true, metadata: bytes, ...(rp.value ? { requiresPython: rp.value } : {}) };
}
