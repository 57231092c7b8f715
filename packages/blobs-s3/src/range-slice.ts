/**
 * A range as asked, from whatever the server sent. RFC 9110 §14.2 lets a server ignore `Range`
 * (a 200 with the whole representation), and some S3-compatible servers widen it (s3rver 3.7
 * answers `bytes=0-0` with the whole object); the `Content-Range` of the answer says what came.
 * When it is more than was asked for, the excess is cut off here, so a reader gets exactly the
 * inclusive range it asked for.
 */
import { Readable } from 'node:stream';

/** The first byte offset of a `Content-Range: bytes A-B/N` answer (0 without one: a 200 is the whole object). */
function answeredStart(contentRange: string | undefined): number | undefined {
  if (contentRange === undefined) return 0;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange.trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * `body` cut to bytes `start..end` (inclusive) of the object, given the answer's `Content-Range`
 * and length. Passes `body` through untouched when it is already exactly that.
 */
export function sliceToRange(
  body: Readable,
  wanted: { start: number; end: number },
  answer: { contentRange?: string | undefined; contentLength?: number | undefined },
): Readable {
  const length = wanted.end - wanted.start + 1;
  const from = answeredStart(answer.contentRange);
  if (from === undefined || from > wanted.start) {
    body.destroy();
    throw new Error(`the server answered range ${answer.contentRange} for bytes ${wanted.start}-${wanted.end}`);
  }
  const skip = wanted.start - from;
  if (skip === 0 && answer.contentLength === length) return body;
  return Readable.from(take(body, skip, length), { objectMode: false });
}

async function* take(body: Readable, skip: number, length: number): AsyncGenerator<Buffer> {
  let toSkip = skip;
  let left = length;
  try {
    for await (const raw of body) {
      let chunk = raw as Buffer;
      if (toSkip > 0) {
        const n = Math.min(toSkip, chunk.length);
        chunk = chunk.subarray(n);
        toSkip -= n;
      }
      if (chunk.length === 0) continue;
      if (chunk.length >= left) {
        yield chunk.subarray(0, left);
        return;
      }
      left -= chunk.length;
      yield chunk;
    }
  } finally {
    body.destroy(); // the rest is not wanted: release the connection
  }
}
