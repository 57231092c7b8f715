/**
 * Source distributions (PyPA "Source distribution format"): a gzipped tar whose single top-level
 * directory `{name}-{version}/` holds `PKG-INFO`. Read as one stream (gzip has no index) with
 * node's zlib and tar-stream; the scan stops at PKG-INFO, after `maxEntries` members, or after
 * `maxSdistScanBytes` decompressed bytes, whichever comes first.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import type { ArtifactUnderValidation } from '@pep694/core';
import type { DistributionLimits } from './limits.js';
import { parseMetadataHeaders } from './metadata.js';
import { describe, problem, type ArchiveOutcome } from './outcome.js';
import { checkMetadataFields, clip, readRequiresPython, stemNamesRelease, type Release } from './release.js';

class LimitExceeded extends Error {}

/** Counts decompressed bytes and fails the pipeline past the limit. */
function byteLimit(max: number): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      total += chunk.length;
      if (total > max) cb(new LimitExceeded(`more than ${max} decompressed bytes were read without finding PKG-INFO`));
      else cb(null, chunk);
    },
  });
}

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

export async function validateSdist(artifact: ArtifactUnderValidation, release: Release, limits: DistributionLimits): Promise<ArchiveOutcome> {
  const file = artifact.filename;
  const source = await artifact.read();
  const gunzip = createGunzip();
  const limit = byteLimit(limits.maxSdistScanBytes);
  const extract = tar.extract();
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
  };
  source.on('error', fail);
  gunzip.on('error', fail);
  limit.on('error', fail);
  source.pipe(gunzip).pipe(limit).pipe(extract as unknown as NodeJS.WritableStream);

  let members = 0;
  try {
    for await (const entry of extract) {
      members += 1;
      if (members > limits.maxEntries) {
        return problem(file, `the sdist has more than ${limits.maxEntries} members before its PKG-INFO; this index reads at most ${limits.maxEntries}`);
      }
      const name = entry.header.name.replace(/^(?:\.\/)+/, '');
      const m = /^([^/]+)\/PKG-INFO$/.exec(name);
      if (!m) {
        entry.resume();
        continue;
      }
      const top = m[1]!;
      const path = `${top}/PKG-INFO`;
      if (!stemNamesRelease(top, release)) {
        return problem(
          clip(path),
          `the sdist's top-level directory is ${JSON.stringify(clip(top))}; for this session it must be {name}-{version} with name ${JSON.stringify(release.project)} and version ${JSON.stringify(release.version)}`,
        );
      }
      if (entry.header.type !== 'file' && entry.header.type !== 'contiguous-file') {
        return problem(path, `${path} is a ${entry.header.type ?? 'special'} entry, not a regular file`);
      }
      if ((entry.header.size ?? 0) > limits.maxMetadataBytes) {
        return problem(path, `${path} is ${entry.header.size} bytes; this index accepts core metadata up to ${limits.maxMetadataBytes} bytes`);
      }
      const bytes = await readAtMost(entry, limits.maxMetadataBytes);
      if (!bytes) return problem(path, `${path} is larger than ${limits.maxMetadataBytes} bytes`);
      const parsed = parseMetadataHeaders(bytes, 'PKG-INFO');
      if (!parsed.ok) return problem(path, parsed.message);
      const mismatches = checkMetadataFields(parsed.headers, release, 'PKG-INFO', limits);
      if (mismatches.length > 0) return { ok: false, errors: mismatches.map((message) => ({ source: path, message })) };
      const rp = readRequiresPython(parsed.headers, 'PKG-INFO', limits);
      if (rp.error !== undefined) return problem(path, rp.error);
      return { ok: true, metadata: bytes, ...(rp.value ? { requiresPython: rp.value } : {}) };
    }
  } catch (err) {
    const cause = failure ?? err;
    if (cause instanceof LimitExceeded) return problem(file, `the sdist was not accepted: ${cause.message}`);
    return problem(file, `the sdist is not a readable .tar.gz archive: ${describe(cause)}`);
  } finally {
    source.unpipe();
    source.destroy();
    gunzip.destroy();
    limit.destroy();
    extract.destroy();
  }
  if (failure) return problem(file, `the sdist is not a readable .tar.gz archive: ${describe(failure)}`);
  return problem(file, `the sdist has no PKG-INFO in a top-level {name}-{version}/ directory (read ${members} members)`);
}
