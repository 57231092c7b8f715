/**
 * The optional `BlobStore.adoptFile` capability (see `@pep694/core`'s ports): hands a finished tus
 * upload to the host without copying it. Stores without it get one stream copy through `stage`.
 */
import type { BlobStore } from '@pep694/core';

export type FileAdoption = Required<Pick<BlobStore, 'adoptFile'>>;

/** Whether `blobs` offers `adoptFile`. */
export function canAdopt(blobs: BlobStore): blobs is BlobStore & FileAdoption {
  return typeof blobs.adoptFile === 'function';
}
