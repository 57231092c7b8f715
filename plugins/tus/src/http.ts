/**
 * Small HTTP helpers of the tus routes: tus header checks. Answering (`inviteBody`, `refuse`) and
 * the checks every mechanism makes are in `@pep694/core/node-http`.
 */
import type { IncomingMessage } from 'node:http';
import { parseMediaType, ProblemError } from '@pep694/core';
import { requireIdentityEncoding } from '@pep694/core/node-http';

/** The tus protocol version this mechanism speaks; every tus response carries it as `Tus-Resumable`. */
export const TUS_VERSION = '1.0.0';
/** The media type of a tus PATCH body. */
export const TUS_PATCH_TYPE = 'application/offset+octet-stream';

/** A header's single value (the first when repeated), or undefined. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** A non-negative safe integer header (`Content-Length`, `Upload-Offset`), undefined when absent. */
export function integerHeader(req: IncomingMessage, name: string): number | undefined {
  const raw = header(req, name);
  if (raw === undefined) return undefined;
  const n = /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new ProblemError('invalid-parameter', `${name} must be a non-negative integer, not ${JSON.stringify(raw.slice(0, 40))}.`, {
      errors: [{ source: name, message: 'not a non-negative integer' }],
    });
  }
  return n;
}

/**
 * Checks the headers of a tus PATCH against the file upload session, before any byte is read:
 * `Content-Type: application/offset+octet-stream` (415), no content coding (415), `Upload-Offset`
 * present (400), no `Upload-Length` other than the declared size (400: the length is fixed when
 * the index creates the upload), and a `Content-Length` that fits the declared size (413
 * `payload-too-large`) and the chunk limit (413 `body-too-large`).
 */
export function checkPatchHeaders(req: IncomingMessage, size: number, maxChunkSize: number | undefined): void {
  const type = header(req, 'content-type');
  const m = type === undefined ? null : parseMediaType(type);
  if (!m || `${m.type}/${m.subtype}` !== TUS_PATCH_TYPE) {
    throw new ProblemError(
      'unsupported-media-type',
      `${type === undefined ? 'The Content-Type header is missing' : `Content-Type ${JSON.stringify(type.slice(0, 100))} is not accepted`}; a tus PATCH is sent as Content-Type: ${TUS_PATCH_TYPE}.`,
    );
  }
  requireIdentityEncoding(header(req, 'content-encoding'));
  const offset = integerHeader(req, 'Upload-Offset');
  if (offset === undefined) {
    throw new ProblemError('invalid-parameter', 'A tus PATCH needs an Upload-Offset header: HEAD upload_url for the offset to send from.', {
      errors: [{ source: 'Upload-Offset', message: 'missing' }],
    });
  }
  const length = integerHeader(req, 'Upload-Length');
  if (length !== undefined) {
    throw new ProblemError(
      'invalid-parameter',
      length === size
        ? `The upload's length is fixed at ${size} bytes (the declared size) when the index creates it; do not send Upload-Length.`
        : `Upload-Length ${length} differs from the declared size of ${size} bytes; the upload's length is fixed at creation.`,
      {
        errors: [{ source: 'Upload-Length', message: `must not be sent (the upload is ${size} bytes)` }],
        extensions: { expected: size, received: length },
      },
    );
  }
  const contentLength = integerHeader(req, 'Content-Length');
  if (contentLength !== undefined && offset + contentLength > size) {
    throw new ProblemError(
      'payload-too-large',
      `This PATCH would take the upload past its declared size: ${offset} + ${contentLength} bytes > ${size}. Nothing was written.`,
      { extensions: { expected: size, received: offset + contentLength } },
    );
  }
  if (contentLength !== undefined && maxChunkSize !== undefined && contentLength > maxChunkSize) {
    throw new ProblemError(
      'body-too-large',
      `A PATCH may carry at most ${maxChunkSize} bytes (max_chunk_size); this one has ${contentLength}. Nothing was written.`,
      {
        extensions: { limit: maxChunkSize },
      },
    );
  }
}
