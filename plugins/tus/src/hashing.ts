/**
 * Hashing in the stream, shared by both tus data stores (`HashingFileStore` on a directory,
 * `HashingS3Store` on a bucket): the per-upload hash states of this process (`HashLedger`) and the
 * tap every PATCH body passes through on its way to storage (`HashTap`).
 *
 * Invariant: a hash state at `offset` has seen exactly the first `offset` bytes of the upload.
 * Every byte that passes the tap reaches storage: when the PATCH body ends early (client gone,
 * lock handed over, size exceeded) the tap is ended gracefully rather than destroyed, so what it
 * hashed is flushed. A failed write breaks the invariant, and then the state is dropped ("lost");
 * so is a state that a PATCH at another offset finds (bytes written by another process or node,
 * or before a restart). A lost state is never revived: completion then reports no digests and the
 * bytes are read once to hash them.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createHashers, isOutOfSpace, ProblemError, type HashName, type Hashers } from '@pep694/core';

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

/** The answer to a PATCH whose bytes could not be stored (disk full, bucket unreachable). */
export function storageFailure(err: unknown): TusHttpError {
  return new TusHttpError(
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

interface HashState {
  /** Undefined once lost. */
  hashers: Hashers<HashName> | undefined;
  /** Bytes hashed, all of them stored. */
  offset: number;
}

/** Counts and hashes the bytes that pass, unchanged; stops (ends, not fails) at `limit` bytes. */
export class HashTap extends Transform {
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

/**
 * `readable` → a `HashTap` that ends gracefully when the body ends early (error, close, or the
 * chunk limit), so that what it hashed still reaches storage. `detach` removes the listeners.
 */
export function tapBody(readable: Readable, hashers: Hashers<HashName> | undefined, limit: number): { tap: HashTap; detach(): void } {
  const endTap = () => {
    readable.unpipe(tap);
    if (!tap.writableEnded) tap.end();
  };
  const tap = new HashTap(hashers, limit, (err) => {
    setImmediate(endTap);
    return err;
  });
  readable.once('error', endTap);
  readable.once('close', endTap);
  readable.pipe(tap);
  return {
    tap,
    detach() {
      readable.unpipe(tap);
      readable.off('error', endTap).off('close', endTap);
    },
  };
}

/** What one write of a PATCH body reports: the new offset, the bytes hashed, an error to answer with. */
export interface WriteResult {
  readonly offset: number;
  readonly hashed: number;
  readonly error?: Error | undefined;
}
export type WriteStep = (hashers: Hashers<HashName> | undefined) => Promise<WriteResult>;

/** The hash states of this process's uploads, and the write in flight per upload. */
export class HashLedger {
  private readonly states = new Map<string, HashState>();
  private readonly writing = new Map<string, Promise<number>>();

  /**
   * Starts hashing upload `id` from byte 0, unless a state exists (in order or lost). On a node
   * that has not seen the upload's first bytes (a restart, or another node took them) this creates
   * a state at 0, which the first PATCH finds out of order, and so lost.
   */
  track(id: string, names: readonly HashName[]): void {
    if (!this.states.has(id)) this.states.set(id, { hashers: createHashers(names), offset: 0 });
  }

  /** The digests of the first `size` bytes when the state saw exactly those; undefined otherwise. Forgets the state. */
  takeDigests(id: string, size: number): Partial<Record<HashName, string>> | undefined {
    const state = this.states.get(id);
    this.states.delete(id);
    if (!state?.hashers || state.offset !== size) return undefined;
    return state.hashers.digest();
  }

  /** Whether upload `id` has an in-order hash state. */
  hashing(id: string): boolean {
    return this.states.get(id)?.hashers !== undefined;
  }

  forget(id: string): void {
    this.states.delete(id);
  }

  /** Resolves when no write of `id` is in flight. */
  async settled(id: string): Promise<void> {
    for (let p = this.writing.get(id); p; p = this.writing.get(id)) await p.catch(() => {});
  }

  /**
   * Runs one write of upload `id` at `offset`, after any write in flight (@tus/server's pipeline
   * can settle, and release the upload's lock, before a failed body's write has flushed; so reads
   * of the offset and the next write wait for it). `write` gets the hashers to feed (undefined
   * when the state is lost or out of order) and returns the new offset and how many bytes it
   * hashed, and an error to answer with once the state is updated (the chunk limit reached); a
   * rejection, or a new offset other than `offset + hashed`, loses the state.
   */
  async write(id: string, offset: number, write: WriteStep): Promise<number> {
    await this.settled(id);
    const p = this.#write(id, offset, write);
    this.writing.set(id, p);
    try {
      return await p;
    } finally {
      if (this.writing.get(id) === p) this.writing.delete(id);
    }
  }

  async #write(id: string, offset: number, write: WriteStep): Promise<number> {
    const state = this.states.get(id);
    let hashers: Hashers<HashName> | undefined;
    if (state?.hashers) {
      if (state.offset === offset) hashers = state.hashers;
      else state.hashers = undefined; // out of order: lost for good
    }
    let result: WriteResult;
    try {
      result = await write(hashers);
    } catch (err) {
      if (state) state.hashers = undefined; // which bytes were stored is unknown now
      throw err;
    }
    if (state && hashers) {
      if (result.offset === offset + result.hashed) state.offset = result.offset;
      else state.hashers = undefined;
    }
    if (result.error) throw result.error;
    return result.offset;
  }
}
