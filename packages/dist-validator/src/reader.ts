/**
 * A yauzl RandomAccessReader over `ArtifactUnderValidation.read(range)`, so that reading a wheel's
 * central directory and one member costs a few small range reads, not the whole file.
 *
 * yauzl reads the central directory one record at a time (46 bytes, then the name), which would be
 * two blob reads per entry. Small reads are therefore served from one read-ahead window (1 MiB by
 * default): the end-of-central-directory search and the directory itself are sequential, so a
 * 100,000-entry directory costs a handful of reads, and memory stays at one window.
 */
import { PassThrough, type Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { ArtifactUnderValidation } from '@pep694/core';

/** Reads `length` bytes at `position` (fewer only at the end of the blob). */
async function readRange(artifact: ArtifactUnderValidation, position: number, length: number): Promise<Buffer> {
  if (length <= 0) return Buffer.alloc(0);
  const stream = await artifact.read({ start: position, end: position + length - 1 });
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      chunks.push(b);
      got += b.length;
      if (got >= length) break;
    }
  } finally {
    stream.destroy();
  }
  const all = Buffer.concat(chunks, got);
  return all.length > length ? all.subarray(0, length) : all;
}

export class ArtifactReader extends yauzl.RandomAccessReader {
  private window: { start: number; data: Buffer } | undefined;
  /** Bytes fetched from the artifact so far (for tests and logs). */
  bytesFetched = 0;

  constructor(
    private readonly artifact: ArtifactUnderValidation,
    private readonly size: number,
    private readonly windowSize = 1024 * 1024,
  ) {
    super();
  }

  private cached(position: number, length: number): Buffer | undefined {
    const w = this.window;
    if (!w || position < w.start || position + length > w.start + w.data.length) return undefined;
    return w.data.subarray(position - w.start, position - w.start + length);
  }

  private async fetch(position: number, length: number): Promise<Buffer> {
    const hit = this.cached(position, length);
    if (hit) return hit;
    if (length > this.windowSize) {
      const data = await readRange(this.artifact, position, length);
      this.bytesFetched += data.length;
      return data;
    }
    const want = Math.min(this.windowSize, this.size - position);
    const data = await readRange(this.artifact, position, Math.max(want, length));
    this.bytesFetched += data.length;
    this.window = { start: position, data };
    return data.subarray(0, Math.min(length, data.length));
  }

  /**
   * `length` bytes at `position` (fewer only at the end of the artifact), for our own structure
   * checks of the end records (the local headers have their own reader: forward-reader.ts).
   */
  async readAt(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length <= 0 || position >= this.size) return Buffer.alloc(0);
    return this.fetch(position, Math.min(length, this.size - position));
  }

  override read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (err: Error | null, bytesRead?: number) => void,
  ): void {
    this.fetch(position, length).then(
      (data) => {
        data.copy(buffer, offset);
        callback(null, data.length);
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** `end` is exclusive here (yauzl's convention); the artifact's ranges are inclusive. */
  override _readStreamForRange(start: number, end: number): Readable {
    const out = new PassThrough();
    const hit = this.cached(start, end - start);
    if (hit) {
      out.end(Buffer.from(hit));
      return out;
    }
    this.artifact.read({ start, end: end - 1 }).then(
      (source) => {
        source.on('data', (chunk: Buffer) => (this.bytesFetched += chunk.length));
        source.on('error', (err) => out.destroy(err));
        out.on('close', () => source.destroy());
        source.pipe(out);
      },
      (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return out;
  }
}
