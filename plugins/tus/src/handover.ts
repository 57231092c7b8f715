/**
 * Handing a finished tus upload to the host: its bytes go under `ctx.stagingKey` (rule 4 on
 * `UploadMechanism`), adopted by rename when the blob store can (`FileAdoption`), else copied
 * once, hashing in that pass when the in-stream hash state was lost. Then the tus upload is gone.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ByteMeter, createHashers, FILE_IO_CHUNK, type BlobStore, type FileUploadContext, type HashName } from '@pep694/core';
import { canAdopt } from './adoption.js';
import type { HashingFileStore } from './store.js';

/** Moves upload `ctx.file.id` to `ctx.stagingKey`; `hash` asks for the digests of the bytes (returned). */
export async function handOver(
  ctx: FileUploadContext,
  store: HashingFileStore,
  blobs: BlobStore,
  hash: boolean,
): Promise<{ digests?: Partial<Record<HashName, string>> }> {
  const id = ctx.file.id;
  const path = store.path(id);
  if (canAdopt(blobs) && (await blobs.adoptFile(ctx.stagingKey, path))) {
    await store.purge(id); // the info file (the data file is the blob now)
    return {};
  }
  const hashers = hash ? createHashers(Object.keys(ctx.file.hashes) as HashName[]) : undefined;
  const staging = await blobs.stage(ctx.stagingKey);
  try {
    // No limit here: completion found the offset at the declared size, which tus writes no further.
    const source = createReadStream(path, { highWaterMark: FILE_IO_CHUNK });
    if (hashers) await pipeline(source, new ByteMeter(Number.POSITIVE_INFINITY, hashers), staging.stream);
    else await pipeline(source, staging.stream);
    await staging.commit();
  } catch (err) {
    await staging.abort().catch(() => {});
    throw err;
  }
  await store.purge(id);
  return hashers ? { digests: hashers.digest() } : {};
}
