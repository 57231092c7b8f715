/**
 * Where an sdist's tar ends. Python's `tarfile` (which pip and build backends use) stops at the
 * first header block that is all zeros, the end-of-archive marker, and also at a block that is no
 * valid header; tar-stream skips such blocks and reads on. So two tars concatenated, or members
 * hidden after the end marker, would be seen by this index and not by pip (or the reverse, for
 * PKG-INFO). We accept only archives where every member comes before the first such block and
 * nothing but zero blocks follows the last member.
 *
 * This runs as a pass-through over the decompressed stream: it notes the 512-byte blocks that
 * tar-stream would skip as empty headers (all zeros but for the checksum field), except inside
 * member data, and `member()` / `finish()` check that none lies before a member or after the
 * last one is followed by anything else. The stream runs ahead of the members we are handed by
 * at most its buffers, so only the blocks in that window are kept.
 */
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
const ZEROS = Buffer.alloc(BLOCK);

/** tar-stream's empty header: every byte zero except, possibly, the checksum field (148..155). */
function isEmptyHeader(buf: Buffer, at: number): boolean {
  return ZEROS.compare(buf, at, at + 148, 0, 148) === 0 && ZEROS.compare(buf, at + 156, at + BLOCK, 156, BLOCK) === 0;
}

export class TarEndWatch extends Transform {
  /** Decompressed bytes seen so far. */
  private position = 0;
  /** Blocks before this are member data (no need to look at them). */
  private skipUntil = 0;
  /** The start of a block split over two chunks. */
  private partial: Buffer | undefined;
  /** Runs of empty header blocks [start, end), in order, not before the last member's data end. */
  private runs: [number, number][] = [];
  /** Where the previous member's data ended. */
  private lastEnd = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const start = this.position;
    this.position += chunk.length;
    let p = start;
    if (this.partial) {
      const need = BLOCK - this.partial.length;
      if (chunk.length < need) {
        this.partial = Buffer.concat([this.partial, chunk]);
        return cb(null, chunk);
      }
      const block = Buffer.concat([this.partial, chunk.subarray(0, need)]);
      this.partial = undefined;
      this.note(block, 0, start - (BLOCK - need));
      p = start + need;
    }
    p = Math.max(p, this.skipUntil);
    for (; p + BLOCK <= this.position; p += BLOCK) this.note(chunk, p - start, p);
    if (p < this.position) this.partial = Buffer.from(chunk.subarray(p - start));
    cb(null, chunk);
  }

  private note(buf: Buffer, at: number, position: number): void {
    if (position < this.skipUntil || !isEmptyHeader(buf, at)) return;
    const last = this.runs[this.runs.length - 1];
    if (last && last[1] === position) last[1] = position + BLOCK;
    else this.runs.push([position, position + BLOCK]);
  }

  /**
   * The next member: its header block is at `headerAt`, its data ends at `dataEnd`. Returns a
   * problem when an empty block lies between the previous member and this one.
   */
  member(headerAt: number, dataEnd: number, name: string): string | undefined {
    const hidden = this.runs.find(([s, e]) => s < headerAt && e > this.lastEnd);
    if (hidden) {
      return `the sdist has an end-of-archive (empty) block at offset ${Math.max(hidden[0], this.lastEnd)}, and more members after it (the first is ${JSON.stringify(name)}): Python's tarfile stops reading at that block, so pip would not see them (concatenated tar archives)`;
    }
    this.runs = this.runs.filter(([, e]) => e > dataEnd).map(([s, e]) => [Math.max(s, dataEnd), e]);
    this.lastEnd = dataEnd;
    this.skipUntil = Math.max(this.skipUntil, dataEnd);
    return undefined;
  }

  /** Once the stream has ended: only empty blocks may follow the last member. */
  finish(): string | undefined {
    let cursor = this.lastEnd;
    for (const [s, e] of this.runs) {
      if (s !== cursor) break;
      cursor = e;
    }
    if (cursor >= this.position) return undefined;
    return `the sdist has ${this.position - cursor} bytes after its last member (at offset ${cursor}) that are neither a member nor end-of-archive padding; tar readers differ on what they hold`;
  }
}
