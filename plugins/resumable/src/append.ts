/**
 * Appending a request's content to an upload resource: request → hash (while the state is in
 * order) → the data file, opened for appending. Interrupted requests keep what arrived (the draft:
 * "append as much of the request content as possible ... without discontinuities"), so the client
 * resumes from the new offset. The running append is registered on the upload, so a concurrent one
 * is refused and an offset retrieval, a cancellation or completion can stop it.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { watchIdle, minBytesPerWindow } from '@pep694/core/node-http';
import type { LiveUpload, UploadFiles } from './store.js';

export interface AppendLimits {
  /** Most bytes this request may add (the rest of the declared size, or `max-append-size`). */
  readonly limit: number;
  readonly idleTimeout: number;
  readonly minRate: number;
}

export interface AppendResult {
  /** Bytes this request added. */
  readonly written: number;
  /** The whole content arrived (the request ended normally, within `limit`). */
  readonly ended: boolean;
  /** The content went past `limit`: the bytes up to it were kept, the rest not read. */
  readonly overflow: boolean;
  /** Why it stopped early, when it was stopped (idle, superseded, canceled); undefined when the client went away or it ended. */
  readonly stopReason: Error | undefined;
}

/** Marks `upload` busy with an append by `req` and runs it; the caller has checked that none runs. */
export function startAppend(files: UploadFiles, upload: LiveUpload, req: IncomingMessage, limits: AppendLimits): Promise<AppendResult> {
  let stopReason: Error | undefined;
  let settle!: () => void;
  const done = new Promise<void>((r) => (settle = r));
  upload.append = {
    done,
    stop(reason) {
      stopReason ??= reason;
      req.destroy();
    },
  };
  const run = async (): Promise<AppendResult> => {
    const file = createWriteStream(files.path(upload.id), { flags: 'a', highWaterMark: 1024 * 1024 });
    const fileFailed = new Promise<never>((_, reject) => file.once('error', reject));
    fileFailed.catch(() => {});
    const stopWatching = watchIdle(
      req,
      limits.idleTimeout,
      (why) => upload.append?.stop(new Error(why === 'idle' ? 'no bytes arrived in time' : 'the bytes arrived too slowly')),
      minBytesPerWindow(limits.minRate, limits.idleTimeout),
    );
    let written = 0;
    let ended = false;
    let overflow = false;
    let writeError: unknown;
    try {
      for await (const piece of req.iterator({ destroyOnReturn: false })) {
        let chunk = piece as Buffer;
        if (written + chunk.length > limits.limit) {
          overflow = true;
          chunk = chunk.subarray(0, limits.limit - written);
        }
        if (chunk.length > 0) {
          upload.hashers?.update(chunk);
          written += chunk.length;
          upload.inFlight = written;
          if (!file.write(chunk)) await Promise.race([once(file, 'drain'), fileFailed]);
        }
        if (overflow) break;
      }
      ended = !overflow;
    } catch (err) {
      // The request failed (client gone, or stopped): what was written stays.
      if (file.errored) writeError = err;
    } finally {
      stopWatching();
    }
    try {
      file.end();
      await Promise.race([once(file, 'close'), fileFailed]);
    } catch (err) {
      writeError = err;
    }
    if (writeError !== undefined || file.errored) {
      // The file may hold part of a chunk that was hashed: the hash state no longer matches it.
      upload.hashers = undefined;
      upload.offset = (await files.dataSize(upload.id)) ?? upload.offset;
      throw writeError ?? file.errored;
    }
    upload.offset += written;
    return { written, ended, overflow, stopReason };
  };
  return run().finally(() => {
    upload.append = undefined;
    upload.inFlight = 0;
    settle();
  });
}

/**
 * Waits for `upload`'s running append to end, at most `ms`; then stops it (`reason`) and waits
 * for it to settle. Used before answering with the offset, cancelling, or completing.
 */
export async function drainAppend(upload: LiveUpload, ms: number, reason: () => Error): Promise<boolean> {
  const running = upload.append;
  if (!running) return false;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    running.done.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms))),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    running.stop(reason());
    await running.done;
  }
  return timedOut;
}
