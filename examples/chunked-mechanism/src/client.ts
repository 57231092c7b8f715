/**
 * The client half: executes a `vnd-*-chunked-v1` mechanism map for a buffer or a stream, one
 * PATCH per chunk, in order. Rejects with the server's problem detail on any refusal.
 */
import { Readable } from 'node:stream';

export interface ChunkedInstructions {
  readonly chunk_url?: unknown;
  readonly chunk_size?: unknown;
  readonly [key: string]: unknown;
}

export class ChunkedUploadError extends Error {
  constructor(
    readonly status: number,
    readonly problem: unknown,
  ) {
    super(`chunk refused with ${status}: ${(problem as { detail?: string } | undefined)?.detail ?? ''}`);
    this.name = 'ChunkedUploadError';
  }
}

export async function uploadChunked(opts: {
  instructions: ChunkedInstructions;
  body: Uint8Array | Readable;
  authorization?: string | undefined;
  signal?: AbortSignal;
  onProgress?: (sent: number) => void;
}): Promise<void> {
  const url = String(opts.instructions.chunk_url);
  const chunkSize = Number(opts.instructions.chunk_size);
  if (!url.startsWith('http') || !Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new TypeError('not a chunked mechanism map');
  let offset = 0;
  const send = async (chunk: Uint8Array) => {
    const res = await fetch(url, {
      method: 'PATCH',
      headers: {
        'content-type': 'application/offset+octet-stream',
        'upload-offset': String(offset),
        ...(opts.authorization ? { authorization: opts.authorization } : {}),
      },
      body: chunk,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const text = await res.text();
    if (res.status >= 300) throw new ChunkedUploadError(res.status, text ? (JSON.parse(text) as unknown) : undefined);
    offset += chunk.length;
    opts.onProgress?.(offset);
  };
  // Re-slice whatever the source yields into chunks of at most chunk_size.
  const source = opts.body instanceof Readable ? opts.body : Readable.from([Buffer.from(opts.body)]);
  let pending = Buffer.alloc(0);
  let sentAny = false;
  for await (const piece of source) {
    pending = Buffer.concat([pending, piece as Buffer]);
    while (pending.length >= chunkSize) {
      await send(pending.subarray(0, chunkSize));
      pending = pending.subarray(chunkSize);
      sentAny = true;
    }
  }
  if (pending.length > 0 || !sentAny) await send(pending); // an empty file is one empty chunk
}
