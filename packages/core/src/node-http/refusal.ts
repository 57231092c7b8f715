/**
 * Answering a mechanism route's request: inviting its body (`100 Continue`) once it is wanted, and
 * refusing it so that the client gets the answer and the connection stays usable. These are rules
 * 2 and 3 on `UploadMechanism`; `asHttpHandler` mounts an express `Router` as its `HttpHandler`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpHandler } from '../mechanism.js';
import type { MechanismHost } from '../ports.js';
import { DEFAULT_LINGER, type LingerBudget } from '../transfer-defaults.js';
import { contentLength, expectsContinue } from './request.js';

export { DEFAULT_LINGER, type LingerBudget };

/**
 * A handler typed with its framework's request and response (an express `Router`, say) as the
 * `HttpHandler` a mechanism's `routes()` returns. The host passes node's request and response,
 * which is what express's types describe with its additions.
 */
export function asHttpHandler<Req extends IncomingMessage, Res extends ServerResponse>(
  handler: (req: Req, res: Res, next: (err?: unknown) => void) => unknown,
): HttpHandler {
  return (req, res, next) => void handler(req as Req, res as Res, next);
}

/** Requests that `inviteBody` sent a `100 Continue`. */
const invited = new WeakSet<IncomingMessage>();

/**
 * Rule 2 on `UploadMechanism`: sends `100 Continue` to a client that waits for it (once). Call it
 * when the request is authorized and its headers checked, right before reading the body; the
 * host never sends one by itself, so a request refused before this never sends its body.
 */
export function inviteBody(req: IncomingMessage, res: ServerResponse): void {
  if (!expectsContinue(req) || invited.has(req)) return;
  invited.add(req);
  res.writeContinue();
}

/** Whether the client waits for a `100 Continue` that `inviteBody` has not sent (so its body is not coming). */
export function awaitsInvitation(req: IncomingMessage): boolean {
  return expectsContinue(req) && !invited.has(req) && !req.complete;
}

export interface RefuseOptions {
  /** Body bytes the handler has read already (they count against `linger`'s budget). */
  readonly consumed?: number;
  readonly linger?: LingerBudget;
}

/**
 * Rule 3 on `UploadMechanism`: sends `err` as the host's problem+json once the request body is out
 * of the way (see `answerAfterBody`), or at once with `Connection: close` when the client waits
 * for a `100 Continue` it was not sent (its body is not coming, so there is nothing to wait for).
 * Does nothing when an answer has started or the connection is gone.
 */
export function refuse(
  host: Pick<MechanismHost, 'sendProblem'>,
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  opts: RefuseOptions = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const answer = () => host.sendProblem(res, err);
  if (awaitsInvitation(req)) {
    res.setHeader('Connection', 'close');
    answer();
    return;
  }
  answerAfterBody(req, res, answer, opts.consumed ?? 0, opts.linger ?? DEFAULT_LINGER);
}

/**
 * Answers once the request body is out of the way. A server that answers and closes while the
 * client is still sending makes the kernel reset the connection, and a client may then lose the
 * answer with the reset. So:
 * - a body that has fully arrived is discarded and the answer goes out normally;
 * - a body that will arrive within `budget` (by Content-Length, or found by reading) is read and
 *   discarded first, then answered normally (the connection stays reusable);
 * - a larger or slower one is answered at once with `Connection: close`: clients that watch for an
 *   early answer while sending (curl, node's http client, the first-party client halves) get it.
 * `consumed` is how many body bytes the handler already read.
 */
export function answerAfterBody(
  req: IncomingMessage,
  res: ServerResponse,
  answer: () => void,
  consumed = 0,
  budget: LingerBudget = DEFAULT_LINGER,
): void {
  req.unpipe();
  if (req.readableEnded || req.destroyed) {
    answer();
    return;
  }
  let done = false;
  let discarded = 0;
  let timer: NodeJS.Timeout | undefined;
  const finish = (close: boolean) => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('close', onClose);
    // Keep discarding (flowing, no listener) until node closes the connection after the answer.
    if (close && !res.headersSent) res.setHeader('Connection', 'close');
    answer();
  };
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > budget.bytes) finish(true);
  };
  const onEnd = () => finish(false);
  const onClose = () => finish(true);
  const declared = contentLength(req);
  const remaining = declared === undefined ? undefined : declared - consumed;
  req.on('error', () => {}); // a reset while discarding is expected; never crash on it
  if (req.complete || remaining === undefined || remaining <= budget.bytes) {
    // Arrived, small, or chunked (size unknown): read within the budget and see.
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    timer = setTimeout(() => finish(true), budget.ms);
    timer.unref();
    req.resume();
    return;
  }
  req.resume();
  finish(true);
}
