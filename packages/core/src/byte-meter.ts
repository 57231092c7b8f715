/**
 * The stream stage every mechanism that receives a file's bytes puts between the request and the
 * blob store's staging write: it counts the bytes, feeds them to `createHashers`, and stops the
 * stream at the declared size. One pass, no copy, so that backpressure reaches the client.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { ProblemError } from './problem.js';
import type { HashName, Hashers } from './validate/hashes.js';

/**
 * Counts the bytes and hashes them as they pass, unchanged (the same Buffer goes on: no copy).
 * A chunk that would take the count past `limit` fails the stream with `payload-too-large`
 * (`extensions.expected` is the limit); nothing of that chunk is hashed or passed on.
 */
export class ByteMeter extends Transform {
  bytes = 0;
  constructor(
    private readonly limit: number,
    private readonly hashers: Hashers<HashName>,
  ) {
    super();
  }

  /** Hex digests of the bytes that passed; call once the stream has ended. */
  digests(): Readonly<Partial<Record<HashName, string>>> {
    return this.hashers.digest();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const next = this.bytes + chunk.length;
    if (next > this.limit) {
      callback(
        new ProblemError('payload-too-large', `The body is longer than the declared size of ${this.limit} bytes; nothing was stored.`, {
          extensions: { expected: this.limit },
        }),
      );
      return;
    }
    this.hashers.update(chunk);
    this.bytes = next;
    callback(null, chunk);
  }
}
