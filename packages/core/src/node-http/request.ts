/**
 * The server side: helpers for a mechanism's routes, which the host hands node's own
 * `IncomingMessage`/`ServerResponse` (see `HttpHandler`): header checks every byte-receiving
 * mechanism makes, and an idle watch. Answering (`inviteBody`, `refuse`) is in refusal.ts.
 */
import type { IncomingMessage } from 'node:http';
import { ProblemError } from '../problem.js';

/**
 * The `Content-Length` as a number, or undefined when absent (chunked). Node has validated its
 * syntax: digits, up to 2^64 - 1. A length past 2^53 is not exact as a number, but it is larger
 * than anything an index takes, so it counts as that (refused as too large) rather than as an
 * unknown length: taken for one, the request would be read until its idle timeout.
 */
export function contentLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * Whether the client waits for `100 Continue` before sending the body. The host does not answer
 * it by itself: a route calls `inviteBody` once it has authorized and checked the request, so that
 * a refused request never sends its body (rule 2 on `UploadMechanism`).
 */
export const expectsContinue = (req: IncomingMessage): boolean => req.headers.expect?.toLowerCase() === '100-continue';

/**
 * Refuses a content coding: the bytes are stored and hashed exactly as they arrive, so a gzipped
 * body would not be the file (RFC 9110 §15.5.16: 415 for an unsupported content coding).
 * @throws ProblemError `unsupported-media-type` (415) with `Accept-Encoding: identity`
 */
export function requireIdentityEncoding(header: string | undefined): void {
  if (header === undefined) return;
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length > 0) {
    throw new ProblemError(
      'unsupported-media-type',
      `Content-Encoding ${codings.join(', ').slice(0, 100)} is not accepted; send the bytes of the file as they are.`,
      {
        headers: { 'Accept-Encoding': 'identity' },
      },
    );
  }
}

/** Why `watchIdle` gave up on a request: no bytes at all, or fewer than its minimum per window. */
export type IdleReason = 'idle' | 'slow';

/**
 * Calls `onIdle` when the request's connection sees no bytes for `ms` milliseconds (0: never), so
 * that a stalled client does not hold a transfer until the host's request timeout; and, when
 * `minBytes` > 0, when fewer than `minBytes` arrive in any window of `ms`, so that a client that
 * trickles a byte now and then (slowloris) cannot pin the connection either. Returns the function
 * that stops watching and puts the socket's own timeout back.
 */
export function watchIdle(req: IncomingMessage, ms: number, onIdle: (reason: IdleReason) => void, minBytes = 0): () => void {
  const socket = req.socket;
  if (ms <= 0 || !socket) return () => {};
  const previous = socket.timeout ?? 0;
  const idle = () => onIdle('idle');
  // A 'timeout' listener on the request also keeps node from destroying the socket itself.
  req.on('timeout', idle);
  socket.setTimeout(ms);
  let timer: NodeJS.Timeout | undefined;
  if (minBytes > 0) {
    let seen = socket.bytesRead;
    timer = setInterval(() => {
      const now = socket.bytesRead;
      if (now - seen < minBytes) onIdle('slow');
      seen = now;
    }, ms);
    timer.unref();
  }
  return () => {
    req.off('timeout', idle);
    if (timer) clearInterval(timer);
    socket.setTimeout(previous);
  };
}

/** Bytes a `watchIdle` window of `ms` must see at `minRate` bytes per second (0: no minimum). */
export const minBytesPerWindow = (minRate: number, ms: number): number => Math.floor((minRate * ms) / 1000);

/** The 408 for a transfer `watchIdle` gave up on; `again` tells the client what to do (e.g. "POST the file again."). */
export function idleProblem(reason: IdleReason, ms: number, minBytes: number, again: string): ProblemError {
  const what =
    reason === 'idle'
      ? `No bytes arrived for ${ms / 1000} s`
      : `Fewer than ${minBytes} bytes arrived in ${ms / 1000} s (this index needs at least ${Math.round(minBytes / (ms / 1000))} bytes/s)`;
  return new ProblemError('request-timeout', `${what}; the transfer was stopped and nothing was stored. ${again}`);
}
