/**
 * The client half: executes a `vnd-*-chunked-v1` mechanism map for a buffer or a stream, one
 * PATCH per chunk, in order. Rejects with the server's problem detail on any refusal. Sent with
 * node's http/https through core's `sendRequest`, which stops sending when an answer comes early
 * and takes an `agent` (the conformance suite passes one to check rule 2).
 */
import type http from 'node:http';
import { Readable } from 'node:stream';
import { bufferSlices, problemOf, sendRequest } from '@pep694/core/node-http';

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
  /** The agent of every request (node's `agent` option). */
  agent?: http.Agent;
}): Promise<void> {
  const url = String(opts.instructions.chunk_url);
  const chunkSize = Number(opts.instructions.chunk_size);
  if (!url.startsWith('http') || !Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new TypeError('not a chunked mechanism map');
  let offset = 0;
  const send = async (chunk: Buffer) => {
    const answer = await sendRequest({
      method: 'PATCH',
      url: new URL(url),
      headers: {
        'content-type': 'application/offset+octet-stream',
        'upload-offset': String(offset),
        ...(opts.authorization ? { authorization: opts.authorization } : {}),
      },
      body: { source: bufferSlices(chunk), size: chunk.length },
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
    if (answer.status >= 300) throw new ChunkedUploadError(answer.status, problemOf(answer));
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
