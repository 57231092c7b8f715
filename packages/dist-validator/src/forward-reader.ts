/**
 * The reads of the local-header walk (zip-layout.ts), which asks for ranges at increasing
 * offsets: each local header, its name and extra field, its data descriptor. Through one range
 * read per 64 KiB window, a wheel whose members are many and small made hundreds of them (a 40 MB
 * wheel of 2 003 members: 485 reads, 31.8 MB, 190–320 ms), each a new stream on the blob store,
 * and on object storage a request of its own.
 *
 * Here a stream covers a whole run of local headers that follow each other closely (less than
 * `RUN_GAP` apart) and is read forward, skipping what lies between them: one read per run, so
 * one for such a wheel, and a member's large data (a run ends before it) is still never read.
 * A position behind the stream, or past the end of its range, opens the next stream there.
 */
import type { ArtifactUnderValidation } from '@pep694/core';

/** Local headers closer than this share one stream: reading the data between them costs less than another read. */
export const RUN_GAP = 1024 * 1024;
/** How far past a run's last local header its stream reads: the header, its name and its extra field. */
const HEADER_SPAN = 64 * 1024;

export class ForwardReader {
  #chunks: AsyncIterator<unknown> | undefined;
  #close: (() => void) | undefined;
  /** Archive offset of `#buf[0]`. */
  #pos = 0;
  #buf: Buffer = Buffer.alloc(0);
  /** Exclusive end of the open stream's range. */
  #end = 0;
  /** The local headers' offsets, in order. */
  private readonly offsets: number[];

  /**
   * `offsets`: where the central directory says the local headers are; `limit`: where the
   * entries end (the central directory's offset), past which no run reads.
   */
  constructor(
    private readonly artifact: ArtifactUnderValidation,
    offsets: readonly number[],
    private readonly limit: number,
  ) {
    this.offsets = [...offsets].sort((a, b) => a - b);
  }

  /** The end of the run of local headers from the first at or after `position`. */
  private runEnd(position: number): number {
    const o = this.offsets;
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (o[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    if (lo === o.length) return this.limit;
    let k = lo;
    while (k + 1 < o.length && o[k + 1]! - o[k]! <= RUN_GAP) k++;
    return Math.min(this.limit, o[k]! + HEADER_SPAN);
  }

  /** `length` bytes at `position` (fewer only where the artifact ends). */
  async readAt(position: number, length: number): Promise<Buffer> {
    if (length <= 0 || position < 0) return Buffer.alloc(0);
    if (!this.#chunks || position < this.#pos || position + length > this.#end) {
      await this.#open(position, Math.max(position + length, this.runEnd(position)));
    }
    while (this.#pos + this.#buf.length < position + length) {
      const next = await this.#chunks!.next();
      if (next.done) break;
      const chunk = next.value as Buffer;
      if (this.#pos + this.#buf.length <= position) {
        // Everything held lies before the position: drop it.
        this.#pos += this.#buf.length;
        this.#buf = chunk;
      } else {
        this.#buf = Buffer.concat([this.#buf.subarray(Math.max(0, position - this.#pos)), chunk]);
        this.#pos = Math.max(this.#pos, position);
      }
    }
    const from = position - this.#pos;
    return from >= this.#buf.length ? Buffer.alloc(0) : Buffer.from(this.#buf.subarray(from, from + length));
  }

  async #open(start: number, end: number): Promise<void> {
    this.close();
    const stream = await this.artifact.read({ start, end: end - 1 });
    this.#chunks = stream[Symbol.asyncIterator]();
    this.#close = () => stream.destroy();
    this.#pos = start;
    this.#buf = Buffer.alloc(0);
    this.#end = end;
  }

  /** Ends the open stream, if any. */
  close(): void {
    this.#close?.();
    this.#chunks = undefined;
    this.#close = undefined;
  }
}
