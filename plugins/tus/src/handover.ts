/**
 * Handing a finished tus upload to the host: its bytes go under `ctx.stagingKey` (rule 4 on
 * `UploadMechanism`), adopted by rename when the blob store can (`FileAdoption`), else copied
 * once, hashing in that pass when the in-stream hash state was lost. Then the tus upload is gone.
 */
import { pipeline } from 'node:stream/promises';
import { ByteMeter, createHashers, type BlobStore, type FileUploadContext, type HashName } from '@pep694/core';
import { canAdopt } from './adoption.js';
import type { TusStore } from './tus-store.js';

/** Moves upload `ctx.file.id` to `ctx.stagingKey`; `hash` asks for the digests of the bytes (returned). */
export async function handOver(
  ctx: FileUploadContext,
  store: TusStore,
  blobs: BlobStore,
  hash: boolean,
): Promise<{ digests?: Partial<Record<HashName, string>> }> {
  const id = ctx.file.id;
  const path = store.localFile(id);
  if (path !== undefined && canAdopt(blobs) && (await blobs.adoptFile(ctx.stagingKey, path))) {
    await store.purge(id); // the info file (the data file is the blob now)
    return {};
  }
  const hashers = hash ? createHashers(Object.keys(ctx.file.hashes) as HashName[]) : undefined;
  const staging = await blobs.stage(ctx.stagingKey);
  try {
    // No limit here: completion found the offset at the declared size, which tus writes no further.
    // From the upload's storage: the file, or the object a bucket assembled from the parts.
    const source = await store.readFinished(id);
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
