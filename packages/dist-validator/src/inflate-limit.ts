/**
 * A bound on the bytes inflated from an sdist (gzip bombs). Every member header must be read, so
 * the whole tar is decompressed; what bounds the work is the decompressed size, counted as the
 * bytes stream through and checked at every chunk: at most `maxSdistRatio` times the compressed
 * size (real sdists inflate 3 to 25 times; a bomb of zeros about 1,000 times), but always at least
 * `SDIST_INFLATE_FLOOR` (small sdists inflate far more than large ones, tar pads every member to
 * 512 bytes) and never more than `maxSdistScanBytes`.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { DistributionLimits } from './limits.js';

/** Decompressed bytes every sdist may have, whatever its ratio: 32 MiB. */
export const SDIST_INFLATE_FLOOR = 32 * 1024 * 1024;

/** Node's zlib default is 16 KiB; larger chunks cut the per-chunk stream overhead 4-fold. */
export const INFLATE_CHUNK = 256 * 1024;

export class InflateLimitExceeded extends Error {}

/** The decompressed bytes an sdist of `compressedSize` bytes may have, and which bound set it. */
export function inflateBudget(compressedSize: number, limits: DistributionLimits): number {
  return Math.min(limits.maxSdistScanBytes, Math.max(SDIST_INFLATE_FLOOR, limits.maxSdistRatio * compressedSize));
}

/** Passes bytes through and fails the pipeline once more than `budget` have passed. */
export function inflateLimit(budget: number, compressedSize: number, limits: DistributionLimits): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      total += chunk.length;
      if (total <= budget) return cb(null, chunk);
      const why =
        budget === limits.maxSdistScanBytes
          ? `this index decompresses at most ${limits.maxSdistScanBytes} bytes of an sdist`
          : `this index decompresses at most ${limits.maxSdistRatio} times an sdist's size (${compressedSize} bytes here), or ${SDIST_INFLATE_FLOOR} bytes if that is more`;
      cb(new InflateLimitExceeded(`the sdist decompresses to more than ${budget} bytes; ${why} (gzip bomb check)`));
    },
  });
}
