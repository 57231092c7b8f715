/**
 * Handing a finished upload to the host: its bytes go under `ctx.stagingKey` (rule 4 on
 * `UploadMechanism`), adopted by rename when the blob store can (`BlobStore.adoptFile`), else
 * copied once, hashing in that pass when the in-stream hash state was lost. Then the upload
 * resource is gone.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ByteMeter, createHashers, FILE_IO_CHUNK, type BlobStore, type FileUploadContext, type HashName } from '@pep694/core';
import type { UploadFiles } from './store.js';

/** Moves upload `ctx.file.id` to `ctx.stagingKey`; `hash` asks for the digests of the bytes (returned). */
export async function handOver(
  ctx: FileUploadContext,
  files: UploadFiles,
  blobs: BlobStore,
  hash: boolean,
): Promise<{ digests?: Partial<Record<HashName, string>> }> {
  const id = ctx.file.id;
  const path = files.path(id);
  if (typeof blobs.adoptFile === 'function' && (await blobs.adoptFile(ctx.stagingKey, path))) {
    await files.purge(id); // the info file (the data file is the blob now)
    return {};
  }
  const hashers = hash ? createHashers(Object.keys(ctx.file.hashes) as HashName[]) : undefined;
  const staging = await blobs.stage(ctx.stagingKey);
  try {
    // No limit here: completion found the offset at the declared size, and appends stop there.
    const source = createReadStream(path, { highWaterMark: FILE_IO_CHUNK });
    if (hashers) await pipeline(source, new ByteMeter(Number.POSITIVE_INFINITY, hashers), staging.stream);
    else await pipeline(source, staging.stream);
    await staging.commit();
  } catch (err) {
    await staging.abort().catch(() => {});
    throw err;
  }
  await files.purge(id);
  return hashers ? { digests: hashers.digest() } : {};
}
