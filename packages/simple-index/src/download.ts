/**
 * Sending a file or a `.metadata` file: the right `Content-Type`, `Content-Length`, a strong
 * `ETag` (the content's digest), `Accept-Ranges: bytes` with single-range requests (RFC 9110 §14:
 * 206 + `Content-Range`, 416 for an unsatisfiable range, `If-Range`), conditional GET
 * (`If-None-Match` → 304), and HEAD without opening the bytes.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { ProblemError } from '@pep694/core';

export interface Body {
  readonly size: number;
  readonly contentType: string;
  /** Strong validator, quoted: `"<hex digest>"`. */
  readonly etag: string;
  readonly lastModified?: Date;
  readonly cacheControl: string;
  /** Opens the bytes, or an inclusive range of them. */
  open(range?: { start: number; end: number }): Promise<Readable>;
}

/** The media type of a distribution file, by its extension. Never a Content-Encoding: the bytes are the file. */
export function contentTypeFor(filename: string): string {
  if (filename.endsWith('.whl') || filename.endsWith('.zip')) return 'application/zip';
  if (filename.endsWith('.tar.gz') || filename.endsWith('.tgz')) return 'application/gzip';
  if (filename.endsWith('.metadata')) return 'text/plain; charset=utf-8';
  return 'application/octet-stream';
}

type RangeResult = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * RFC 9110 §14.1.2 byte ranges, one range only. A malformed header, another unit, or several
 * ranges are ignored (the whole file is sent), as the RFC allows.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const m = /^bytes=[ \t]*(\d*)-(\d*)[ \t]*$/i.exec(header.trim());
  if (!m) return { kind: 'none' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    // Suffix range: the last b bytes.
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'none' }; // invalid range-spec: ignore
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}

/** `If-None-Match` (weak comparison, RFC 9110 §13.1.2). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => strip(t) === strip(etag));
}

export async function sendBody(req: Request, res: Response, body: Body): Promise<void> {
  const common = (): void => {
    res.setHeader('ETag', body.etag);
    res.setHeader('Cache-Control', body.cacheControl);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (body.lastModified) res.setHeader('Last-Modified', body.lastModified.toUTCString());
  };
  if (matchesEtag(req.headers['if-none-match'], body.etag)) {
    common();
    res.status(304).end();
    return;
  }
  // If-Range: only a matching strong validator keeps the Range (RFC 9110 §13.1.5).
  const ifRange = req.get('if-range');
  const range =
    ifRange !== undefined && ifRange.trim() !== body.etag ? ({ kind: 'none' } as const) : parseRange(req.headers.range, body.size);
  if (range.kind === 'unsatisfiable') {
    throw new ProblemError(
      'range-not-satisfiable',
      `The requested range ${JSON.stringify(String(req.headers.range).slice(0, 100))} is outside the ${body.size} bytes of this file.`,
      {
        headers: { 'Content-Range': `bytes */${body.size}`, 'Accept-Ranges': 'bytes' },
      },
    );
  }
  // Open the bytes before any header is set: a failed read is then a clean problem response.
  const wanted =
    req.method === 'HEAD' ? undefined : range.kind === 'range' ? { start: range.start, end: range.end } : body.size > 0 ? 'all' : undefined;
  const stream = wanted === undefined ? undefined : await body.open(wanted === 'all' ? undefined : wanted);
  common();
  res.setHeader('Content-Type', body.contentType);
  if (range.kind === 'range') {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${body.size}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  } else {
    res.status(200);
    res.setHeader('Content-Length', String(body.size));
  }
  if (!stream) {
    res.end();
    return;
  }
  try {
    await pipeline(stream, res);
  } catch {
    // The client went away, or the read failed after the headers were sent: the connection
    // is cut (a short body with a Content-Length tells the client it is broken).
    stream.destroy();
    res.destroy();
  }
}
