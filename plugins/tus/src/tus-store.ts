/**
 * What the tus mechanism needs of its data store beyond @tus/server's `DataStore`: hashing in the
 * stream (hashing.ts), the offset for status, the finished bytes for the handover, a purge, and a
 * listing for the sweep. Two implement it: `HashingFileStore` (a directory: one process, or one
 * per directory) and `HashingS3Store` (a bucket several nodes share).
 */
import type { Readable } from 'node:stream';
import type { HashName } from '@pep694/core';
import type { DataStore } from '@tus/server';

/** File upload session IDs are base64url; anything else never names a tus upload here. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Throws unless `id` can name a tus upload here (a file upload session ID). */
export function checkUploadId(id: string): void {
  if (!SAFE_ID.test(id)) throw new Error(`not a tus upload id here: ${JSON.stringify(id.slice(0, 40))}`);
}

/** One upload the store holds, for the sweep. */
export interface TusUploadEntry {
  readonly id: string;
  /** When the upload was created, as the storage says; undefined when unknown. */
  readonly createdAt: Date | undefined;
}

export interface TusStore extends DataStore {
  /** Throws unless `id` can name an upload here. */
  checkId(id: string): void;
  /** Starts hashing upload `id` in the stream (see `HashLedger.track`). */
  track(id: string, names: readonly HashName[]): void;
  /** The in-stream digests of the first `size` bytes, if this process saw exactly those in order. */
  takeDigests(id: string, size: number): Partial<Record<HashName, string>> | undefined;
  /** Whether upload `id` is hashed in the stream in this process. */
  hashing(id: string): boolean;
  /** Resolves when no write of `id` is in flight in this process. */
  settled(id: string): Promise<void>;
  /** The bytes stored for upload `id` (for status and completion); undefined when there is no upload. */
  currentOffset(id: string): Promise<number | undefined>;
  /** A local file holding the upload's bytes, which the host's blob store may adopt by rename; undefined when remote. */
  localFile(id: string): string | undefined;
  /** The bytes of a finished upload (offset == size). */
  readFinished(id: string): Promise<Readable>;
  /** Removes whatever is left of upload `id`; a missing upload is fine. */
  purge(id: string): Promise<void>;
  /** Every upload the store holds (the sweep's candidates). */
  uploads(): AsyncIterable<TusUploadEntry>;
}
