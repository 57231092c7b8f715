/**
 * The pointer object under a blob key: which data object holds the key's bytes, and how many
 * there are. Its body is canonical JSON, so its ETag (the MD5 of the body for a plain PutObject on
 * AWS S3, MinIO, R2 and s3rver) can be predicted from a listing of data objects: the sweep finds
 * most referenced data objects without reading any pointer.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface Pointer {
  /** The data object's id (see `KeyLayout.dataObject`). */
  readonly data: string;
  readonly size: number;
}

/** A fresh data id: the time (base 36, so ids sort by age) and 96 random bits. */
export function newDataId(): string {
  return `${Date.now().toString(36)}-${randomBytes(12).toString('hex')}`;
}

export function encodePointer(p: Pointer): string {
  return JSON.stringify({ v: 1, data: p.data, size: p.size });
}

/** The ETag a plain PutObject of this pointer gets where ETags are MD5s of the body (quoted). */
export function pointerEtag(p: Pointer): string {
  return `"${createHash('md5').update(encodePointer(p)).digest('hex')}"`;
}

export function decodePointer(body: string, where: string): Pointer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`${where}: not a blob pointer (no JSON)`);
  }
  const p = parsed as { v?: unknown; data?: unknown; size?: unknown } | null;
  if (p?.v !== 1 || typeof p.data !== 'string' || typeof p.size !== 'number' || !Number.isSafeInteger(p.size) || p.size < 0) {
    throw new Error(`${where}: not a blob pointer`);
  }
  return { data: p.data, size: p.size };
}
