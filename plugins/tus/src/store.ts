/**
 * The tus DataStore: `@tus/file-store` with its `write` replaced by one that hashes the bytes on
 * their way to the file (DESIGN.md: hash in the stream while PATCHes arrive in order in one
 * process) and keeps the hash state per upload.
 *
 * Invariant: a hash state at `offset` has seen exactly the first `offset` bytes of the upload's
 * file. Every byte that passes the hashing tap reaches the file: when the PATCH body ends early
 * (client gone, lock handed over, size exceeded) the tap is ended gracefully rather than
 * destroyed, so what it hashed is flushed. Only a failed file write breaks the invariant, and
 * then the state is dropped ("lost"); so is a state that a PATCH at another offset finds (bytes
 * written by another process, or before a restart). A lost state is never revived: completion
 * then reports no digests and the host reads the file once.
 */
import { createWriteStream } from 'node:fs';
import { rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHashers, FILE_IO_CHUNK, isOutOfSpace, ProblemError, type HashName, type Hashers } from '@pep694/core';
import { FileStore } from '@tus/file-store';
import type { Upload } from '@tus/server';

/**
 * An error @tus/server understands (it reads `status_code` and `body`; anything else becomes a
 * 500) that also carries the problem the mechanism renders for it.
 */
export class TusHttpError extends Error {
  readonly status_code: number;
  readonly body: string;
  constructor(readonly problem: ProblemError) {
    super(problem.detail, { cause: problem });
    this.name = 'TusHttpError';
    this.status_code = problem.status;
    this.body = `${problem.detail}\n`;
  }
}

/** File upload session IDs are base64url; anything else never names a tus upload here. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

interface HashState {
  /** Undefined once lost. */
  hashers: Hashers<HashName> | undefined;
  /** Bytes hashed, all of them in the file. */
  offset: number;
}

/** Counts and hashes the bytes that pass, unchanged; stops (ends, not fails) at `limit` bytes. */
class HashTap extends Transform {
  bytes = 0;
  overflow: TusHttpError | undefined;
  constructor(
    private readonly hashers: Hashers<HashName> | undefined,
    private readonly limit: number,
    private readonly onOverflow: (err: TusHttpError) => TusHttpError,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.overflow) return callback();
    if (this.bytes + chunk.length > this.limit) {
      this.overflow = this.onOverflow(
        new TusHttpError(
          new ProblemError(
            'body-too-large',
            `A PATCH may carry at most ${this.limit} bytes (max_chunk_size); the bytes up to the limit were kept. HEAD upload_url for the offset and continue from there.`,
            { extensions: { limit: this.limit } },
          ),
        ),
      );
      return callback();
    }
    this.hashers?.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

export interface HashingFileStoreOptions {
  readonly directory: string;
  /** Most bytes one PATCH may write; unset: no limit beyond the upload's size. */
  readonly maxChunkSize?: number | undefined;
}

export class HashingFileStore extends FileStore {
  private readonly hashes = new Map<string, HashState>();
  /** The write in flight per upload; see `write`. */
  private readonly writing = new Map<string, Promise<number>>();
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
    if (!SAFE_ID.test(id)) throw new Error(`not a tus upload id here: ${JSON.stringify(id.slice(0, 40))}`);
    return join(this.directory, id);
  }

  /**
   * Starts hashing upload `id` from byte 0, unless a state exists (in order or lost). After a
   * restart this creates a state at 0, which the first PATCH finds out of order (and so lost)
   * when bytes were stored before the restart.
   */
  track(id: string, names: readonly HashName[]): void {
    if (!this.hashes.has(id)) this.hashes.set(id, { hashers: createHashers(names), offset: 0 });
  }

  /**
   * The digests of the first `size` bytes, when the hash state saw exactly those; undefined when
   * it was lost or never existed. Finalizes and forgets the state.
   */
  takeDigests(id: string, size: number): Partial<Record<HashName, string>> | undefined {
    const state = this.hashes.get(id);
    this.hashes.delete(id);
    if (!state?.hashers || state.offset !== size) return undefined;
    return state.hashers.digest();
  }

  /** Whether upload `id` has an in-order hash state (for tests and status). */
  hashing(id: string): boolean {
    return this.hashes.get(id)?.hashers !== undefined;
  }

  forget(id: string): void {
    this.hashes.delete(id);
  }

  /** Resolves when no write of `id` is in flight. */
  async settled(id: string): Promise<void> {
    for (let p = this.writing.get(id); p; p = this.writing.get(id)) await p.catch(() => {});
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

  /** Waits for a write in flight first, so tus reads the final offset (see `write`). */
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

  /**
   * Writes a PATCH body at `offset`: body → hashing tap → the file. @tus/server's pipeline can
   * settle (and release the upload's lock) before this write has flushed when the body fails, so
   * the write is registered in `writing`, and `getUpload` and the next `write` wait for it.
   */
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    await this.settled(id);
    const p = this.writeBody(readable, id, offset);
    this.writing.set(id, p);
    try {
      return await p;
    } finally {
      if (this.writing.get(id) === p) this.writing.delete(id);
    }
  }

  private async writeBody(readable: Readable, id: string, offset: number): Promise<number> {
    const state = this.hashes.get(id);
    let hashers: Hashers<HashName> | undefined;
    if (state?.hashers) {
      if (state.offset === offset) hashers = state.hashers;
      else state.hashers = undefined; // out of order: lost for good
    }
    const endTap = () => {
      readable.unpipe(tap);
      if (!tap.writableEnded) tap.end();
    };
    const tap = new HashTap(hashers, this.maxChunkSize, (err) => {
      setImmediate(endTap);
      return err;
    });
    // A 1 MiB buffer: chunks arriving during a write go out in one writev (see FILE_IO_CHUNK).
    const file = createWriteStream(this.path(id), { flags: 'r+', start: offset, highWaterMark: FILE_IO_CHUNK });
    // The body ending early (client gone, lock handed to another request, size exceeded upstream)
    // ends the tap gracefully: what it hashed still reaches the file.
    readable.once('error', endTap);
    readable.once('close', endTap);
    readable.pipe(tap);
    try {
      await pipeline(tap, file);
    } catch (err) {
      readable.unpipe(tap);
      readable.off('error', endTap).off('close', endTap);
      // Which bytes reached the file is unknown now.
      if (state) state.hashers = undefined;
      throw new TusHttpError(
        isOutOfSpace(err)
          ? new ProblemError(
              'insufficient-storage',
              'The index has run out of storage space; the bytes that fit were kept. Resume later (HEAD upload_url for the offset).',
              { cause: err },
            )
          : new ProblemError('unavailable', 'The server could not store the bytes; try again shortly (HEAD upload_url for the offset).', {
              cause: err,
            }),
      );
    }
    readable.off('error', endTap).off('close', endTap);
    if (hashers && state) state.offset = offset + tap.bytes;
    if (tap.overflow) throw tap.overflow;
    return offset + tap.bytes;
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
