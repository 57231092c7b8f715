/**
 * The route of a mechanism whose file travels in one request (http-post-bytes, multipart): what
 * such a route does besides moving the bytes, once, so each mechanism supplies only its header
 * checks and its receiver. In order: watch for the client going away; authorize (rule 1 on
 * `UploadMechanism`) and check the headers; claim the file's one transfer slot; invite the body
 * (rule 2); receive it with an idle watch; answer 204, or refuse once the body is out of the way
 * (rule 3); record what was committed for `completion`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileUploadContext } from '../mechanism.js';
import type { MechanismHost } from '../ports.js';
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_LINGER, DEFAULT_MIN_RATE, type LingerBudget } from '../transfer-defaults.js';
import { inviteBody, refuse } from './refusal.js';
import { idleProblem, minBytesPerWindow, watchIdle } from './request.js';
import type { OneRequestTransfers, ReceivedBytes, Transfer } from './transfers.js';

/** How long a transfer may stall or trickle, and how much of a refused body is read. */
export interface TransferLimits {
  /** Stop a transfer when no bytes arrive for this many ms (408); 0: never. */
  readonly idleTimeout: number;
  /** Stop a transfer averaging fewer bytes/s than this over an `idleTimeout` window (408); 0: no minimum. */
  readonly minRate: number;
  readonly linger: LingerBudget;
}

export const DEFAULT_TRANSFER_LIMITS: TransferLimits = {
  idleTimeout: DEFAULT_IDLE_TIMEOUT,
  minRate: DEFAULT_MIN_RATE,
  linger: DEFAULT_LINGER,
};

/**
 * Stops `transfer` with 408 when the connection sees no bytes for `idleTimeout` ms, or fewer than
 * `minRate` bytes/s over such a window, so a stalled or trickling client does not hold the file's
 * one transfer slot (and its retries at 409) until the host's request timeout. `again` ends the
 * problem's detail ("POST the file again."). Returns the function that stops watching.
 */
export function watchTransfer(
  req: IncomingMessage,
  transfer: Transfer,
  limits: Pick<TransferLimits, 'idleTimeout' | 'minRate'>,
  again: string,
): () => void {
  const idle = limits.idleTimeout;
  const minBytes = minBytesPerWindow(limits.minRate, idle);
  return watchIdle(req, idle, (reason) => void transfer.stop(idleProblem(reason, idle, minBytes, again)), minBytes);
}

/** The request a receiver moves into the staging key. */
export interface OneRequestUpload {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly ctx: FileUploadContext;
  /** The file's transfer slot: `attach` the stage that counts the bytes and can be stopped. */
  readonly transfer: Transfer;
  /** Whether the client closed the connection before the whole body arrived. */
  readonly gone: boolean;
  /** Calls `f` when the client goes away from now on (check `gone` first). */
  onGone(f: () => void): void;
  /** Starts the idle watch (`watchTransfer`); returns the function that stops it. */
  watchIdle(): () => void;
  /** Tells how many body bytes were read, for the refusal's budget; by default the transfer's bytes. */
  countBodyBytes(count: () => number): void;
}

/** What a mechanism supplies to `OneRequestRoute.serve`. */
export interface OneRequestSteps<R extends ReceivedBytes> {
  /**
   * Checks the request against the file once it is authorized, before any byte is read:
   * Content-Type, Content-Encoding (`requireIdentityEncoding`), Content-Length against the declared
   * size. Throws the ProblemError to answer.
   */
  check(req: IncomingMessage, ctx: FileUploadContext): void;
  /**
   * Moves the body into `ctx.stagingKey` and commits it; resolves with what was committed, or
   * aborts the staging write and rejects with the problem to answer (a stop's reason first).
   */
  receive(upload: OneRequestUpload): Promise<R>;
}

export interface OneRequestRouteOptions {
  readonly host: MechanismHost;
  readonly identifier: string;
  readonly transfers: OneRequestTransfers;
  readonly limits: TransferLimits;
  /** Ends the 408 of a stalled transfer, e.g. "POST the file again." */
  readonly again: string;
}

export class OneRequestRoute {
  constructor(private readonly options: OneRequestRouteOptions) {}

  /** Serves one upload request for `fileId`; answers it in every case, and never rejects. */
  async serve<R extends ReceivedBytes>(
    req: IncomingMessage,
    res: ServerResponse,
    fileId: string,
    steps: OneRequestSteps<R>,
  ): Promise<void> {
    const { host, identifier, transfers, limits, again } = this.options;
    // Watch for the client going away from the start: it may happen while we await the host.
    let gone = false;
    let onGone: (() => void) | undefined;
    req.on('error', () => {}); // reported through 'close' below; never crash on a reset
    req.once('close', () => {
      if (req.complete) return;
      gone = true;
      onGone?.();
    });

    let ctx: FileUploadContext;
    try {
      ctx = await host.authorizeTransfer(req, identifier, fileId);
      steps.check(req, ctx);
    } catch (err) {
      this.refuse(req, res, err);
      return;
    }
    // Claimed synchronously after the last await, so two requests cannot both pass.
    let transfer: Transfer;
    try {
      transfer = transfers.begin(fileId);
    } catch (err) {
      this.refuse(req, res, err);
      return;
    }
    if (!gone) inviteBody(req, res);
    let bodyBytes = () => transfer.bytes;
    const upload: OneRequestUpload = {
      req,
      res,
      ctx,
      transfer,
      get gone() {
        return gone;
      },
      onGone: (f) => (onGone = f),
      watchIdle: () => watchTransfer(req, transfer, limits, again),
      countBodyBytes: (count) => (bodyBytes = count),
    };
    let received: R | undefined;
    try {
      received = await steps.receive(upload);
      if (!res.headersSent) {
        res.statusCode = 204;
        res.end();
      }
    } catch (err) {
      if (!gone) this.refuse(req, res, err, bodyBytes());
    } finally {
      // Remembered only once committed: a failed or stopped transfer leaves the previous one's record.
      transfers.finish(fileId, transfer, received);
    }
  }

  /** `refuse` with this route's host and linger budget. */
  refuse(req: IncomingMessage, res: ServerResponse, err: unknown, consumed = 0): void {
    refuse(this.options.host, req, res, err, { consumed, linger: this.options.limits.linger });
  }
}
