/**
 * The tus DataStore on a directory: `@tus/file-store` with its `write` replaced by one that
 * hashes the bytes on their way to the file (DESIGN.md: hash in the stream while PATCHes arrive
 * in order in one process; see hashing.ts for the hash states and their invariant).
 */
import { createReadStream } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FILE_IO_CHUNK, type HashName } from '@pep694/core';
import { FileStore } from '@tus/file-store';
import type { Upload } from '@tus/server';
import { HashLedger, storageFailure, tapBody } from './hashing.js';
import { checkUploadId, type TusStore, type TusUploadEntry } from './tus-store.js';

export { TusHttpError } from './hashing.js';

export interface HashingFileStoreOptions {
  readonly directory: string;
  /** Most bytes one PATCH may write; unset: no limit beyond the upload's size. */
  readonly maxChunkSize?: number | undefined;
}

export class HashingFileStore extends FileStore implements TusStore {
  private readonly ledger = new HashLedger();
  private readonly maxChunkSize: number;

  constructor(options: HashingFileStoreOptions) {
    super({ directory: options.directory });
    // What clients may use: the index creates uploads itself (no creation, no defer-length) and
    // the file upload session's `expires-at` governs expiry.
    this.extensions = ['termination'];
    this.maxChunkSize = options.maxChunkSize ?? Number.POSITIVE_INFINITY;
  }

  /** The data file of upload `id`. */
  path(id: string): string {
    checkUploadId(id);
    return join(this.directory, id);
  }

  checkId(id: string): void {
    this.path(id);
  }

  track(id: string, names: readonly HashName[]): void {
    this.ledger.track(id, names);
  }

  takeDigests(id: string, size: number): Partial<Record<HashName, string>> | undefined {
    return this.ledger.takeDigests(id, size);
  }

  hashing(id: string): boolean {
    return this.ledger.hashing(id);
  }

  forget(id: string): void {
    this.ledger.forget(id);
  }

  settled(id: string): Promise<void> {
    return this.ledger.settled(id);
  }

  /** Bytes in the data file now, without waiting for a running PATCH (for status); undefined if none. */
  async currentOffset(id: string): Promise<number | undefined> {
    try {
      const st = await stat(this.path(id));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /** The data file: a finished upload is handed over by renaming it. */
  localFile(id: string): string {
    return this.path(id);
  }

  async readFinished(id: string): Promise<Readable> {
    return createReadStream(this.path(id), { highWaterMark: FILE_IO_CHUNK });
  }

  async *uploads(): AsyncIterable<TusUploadEntry> {
    const ids = new Set((await readdir(this.directory)).map((name) => name.replace(/\.json$/, '')));
    for (const id of ids) {
      try {
        checkUploadId(id); // not an upload id: not ours
      } catch {
        continue;
      }
      // The info file's age (the data file's changes with every PATCH).
      const info = await stat(join(this.directory, `${id}.json`)).catch(() => undefined);
      yield { id, createdAt: info?.mtime };
    }
  }

  /** Waits for a write in flight first, so tus reads the final offset (see `HashLedger.write`). */
  override async getUpload(id: string): Promise<Upload> {
    await this.settled(id);
    return super.getUpload(id);
  }

  /** tus termination (DELETE upload_url): the data, its info file and the hash state go. */
  override async remove(id: string): Promise<void> {
    await this.settled(id);
    this.forget(id);
    await super.remove(id);
  }

  /** Removes whatever is left of upload `id` (data, info, hash state); a missing upload is fine. */
  async purge(id: string): Promise<void> {
    await this.settled(id);
    this.forget(id);
    await unlink(this.path(id)).catch(ignoreMissing);
    await rm(join(this.directory, `${id}.json`), { force: true });
  }

  /** Writes a PATCH body at `offset`: body → hashing tap → the file. */
  override write(readable: Readable, id: string, offset: number): Promise<number> {
    return this.ledger.write(id, offset, async (hashers) => {
      const { tap, detach } = tapBody(readable, hashers, this.maxChunkSize);
      // A 1 MiB buffer: chunks arriving during a write go out in one writev (see FILE_IO_CHUNK).
      const file = createWriteStream(this.path(id), { flags: 'r+', start: offset, highWaterMark: FILE_IO_CHUNK });
      try {
        await pipeline(tap, file);
      } catch (err) {
        throw storageFailure(err);
      } finally {
        detach();
      }
      return { offset: offset + tap.bytes, hashed: tap.bytes, error: tap.overflow };
    });
  }
}

// @tus/file-store's constructor creates the directory with fs.mkdir and throws from its callback
// on failure: an uncaught exception, even for a directory removed meanwhile. The mechanism creates
// the directory itself (awaited) before constructing the store, so that call is switched off here.
// (If a later @tus/file-store renames the private method, its own behaviour simply comes back.)
Object.defineProperty(HashingFileStore.prototype, 'checkOrCreateDirectory', { value: () => {}, configurable: true, writable: true });

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
