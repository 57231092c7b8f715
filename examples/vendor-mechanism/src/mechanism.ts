/**
 * `vnd-<operator>-http-fetch`: "File delivered by instructing server to fetch from a URL via HTTP
 * request" (the PEP's own example of a server specific mechanism). The client POSTs a URL to
 * `fetch_url`; the index GETs the artifact itself, through `GuardedFetcher` (allow-list, address
 * policy, manual redirects, timeouts), and streams it to the staging write, hashing it in the same
 * pass and cutting it off at the declared size + 1 byte.
 *
 * The fetch runs inside that POST: the answer comes when the bytes are staged (200) or the fetch
 * failed (a problem document saying why). Meanwhile `status` reports the bytes received; a client
 * that goes away stops the fetch.
 *
 * Written only against the published APIs of @pep694/core: the host's services come through
 * MECHANISM_HOST; nothing here imports the server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import { z } from 'zod';
import {
  createHashers,
  parseBody,
  ProblemError,
  type CompletionOutcome,
  type FileOffer,
  type FileUploadContext,
  type HashName,
  type HttpHandler,
  type MechanismHost,
  type MechanismInstructions,
  type Negotiation,
  type StagingWrite,
  type TransferStatus,
  type UploadMechanism,
  type VendorMechanismIdentifier,
} from '@pep694/core';
import { asHttpHandler, inviteBody, refuse } from '@pep694/core/node-http';
import { GuardedFetcher, type FetchedResponse } from './fetcher.js';
import { FetchPolicy, FetchRefused } from './policy.js';
import type { HttpFetchOptions } from './options.js';

/** The body of `POST fetch_url`. */
export const FetchRequestSchema = z.strictObject({
  url: z.string().min(1).max(4096),
});

/** Largest `POST fetch_url` body we read. */
const MAX_REQUEST_BYTES = 16 * 1024;

interface Transfer {
  state: 'fetching' | 'received' | 'failed';
  /** Bytes staged so far; never more than the declared size. */
  received: number;
  readonly controller: AbortController;
  /** Settles once the staging write is committed or aborted. */
  done: Promise<void>;
  digests?: Partial<Record<HashName, string>>;
  failure?: string;
}

export class HttpFetchMechanism implements UploadMechanism {
  private readonly transfers = new Map<string, Transfer>();
  private readonly fetcher: GuardedFetcher;
  private readonly policy: FetchPolicy;
  private closed = false;

  constructor(
    readonly identifier: VendorMechanismIdentifier,
    private readonly host: MechanismHost,
    private readonly options: HttpFetchOptions,
  ) {
    this.policy = new FetchPolicy(options);
    this.fetcher = new GuardedFetcher({
      policy: this.policy,
      maxRedirects: options.maxRedirects,
      connectTimeoutMs: options.connectTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      userAgent: options.userAgent,
      ...(options.resolver ? { resolver: options.resolver } : {}),
    });
  }

  negotiate(offer: FileOffer): Negotiation {
    const max = this.options.maxFileSize;
    if (max !== undefined && offer.size > max) return { accept: false, reason: `${this.identifier} fetches files of at most ${max} bytes` };
    return { accept: true };
  }

  async instructions(ctx: FileUploadContext): Promise<MechanismInstructions> {
    return {
      identifier: this.identifier,
      fetch_url: `${ctx.baseUrl}/files/${ctx.file.id}`,
      method: 'POST',
      content_type: 'application/json',
    };
  }

  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const t = this.transfers.get(ctx.file.id);
    if (!t) return { kind: 'incomplete', received: 0, detail: 'Nothing was fetched: POST {"url": …} to fetch_url first.' };
    if (t.state === 'fetching') {
      // Not a failure of the file: the client completed too early. It stays pending.
      throw new ProblemError(
        'upload-in-progress',
        `The index is still fetching (${t.received} of ${ctx.file.size} bytes); complete once POST fetch_url has answered.`,
      );
    }
    if (t.state === 'failed')
      return { kind: 'incomplete', received: t.received, detail: `The fetch failed: ${t.failure ?? 'unknown reason'}` };
    this.transfers.delete(ctx.file.id);
    // The digests of the bytes actually fetched, computed in the stream: the host compares them with the declared ones.
    return { kind: 'received', size: t.received, digests: t.digests ?? {} };
  }

  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const t = this.transfers.get(ctx.file.id);
    return { bytesReceived: t?.received ?? 0, active: t?.state === 'fetching' };
  }

  async cancel(ctx: FileUploadContext): Promise<void> {
    const t = this.transfers.get(ctx.file.id);
    this.transfers.delete(ctx.file.id);
    if (!t) return;
    t.controller.abort(new FetchRefused('canceled', 'the file upload session was canceled or deleted during the fetch'));
    await t.done;
  }

  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.transfers.values()];
    this.transfers.clear();
    for (const t of running) t.controller.abort(new FetchRefused('shutdown', 'the index is shutting down'));
    await Promise.all(running.map((t) => t.done));
  }

  routes(): HttpHandler {
    const router = Router();
    // Every refusal goes through core's `refuse` (rule 3 on UploadMechanism): it answers once the
    // request body is out of the way, so the client gets the answer and the connection stays usable.
    router.post('/files/:id', (req, res) => {
      this.post(req, res, String(req.params.id)).catch((err: unknown) =>
        refuse(this.host, req, res, toProblem(err), { consumed: consumedBy(err) }),
      );
    });
    router.all('/files/:id', (req, res) => {
      refuse(this.host, req, res, new ProblemError('method-not-allowed', 'POST {"url": …} to fetch_url.', { headers: { Allow: 'POST' } }));
    });
    return asHttpHandler(router);
  }

  private async post(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    // Every request, first of all: the same credentials and permission as the session API (rule 1).
    const ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
    if (this.closed) throw new ProblemError('unavailable', 'The index is shutting down.', { headers: { 'Retry-After': '5' } });
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      throw new ProblemError(
        'unsupported-media-type',
        'POST fetch_url with Content-Type: application/json and a body {"url": "https://…"}.',
      );
    }
    // The host sends no automatic `100 Continue`: invite the body now that the request is authorized and checked (rule 2).
    inviteBody(req, res);
    const { url: text } = parseBody(FetchRequestSchema, await readJson(req), 'fetch request');
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ProblemError('invalid-parameter', `"${text.slice(0, 200)}" is not an absolute URL.`, {
        errors: [{ source: '/url', message: 'not an absolute URL' }],
      });
    }
    // The policy is checked again on every hop; checking here answers before anything is staged.
    this.policy.checkUrl(url);

    const previous = this.transfers.get(fileId);
    if (previous?.state === 'fetching') throw new ProblemError('upload-in-progress', 'The index is already fetching this file.');
    const running = [...this.transfers.values()].filter((t) => t.state === 'fetching').length;
    if (running >= this.options.maxConcurrentFetches) {
      throw new ProblemError('unavailable', `The index is running ${running} fetches, its limit; try again shortly.`, {
        headers: { 'Retry-After': '5' },
      });
    }

    const t: Transfer = { state: 'fetching', received: 0, controller: new AbortController(), done: Promise.resolve() };
    this.transfers.set(fileId, t);
    // A client that goes away stops the fetch: nobody would learn how it ended.
    const onClose = () => {
      if (!res.writableFinished) t.controller.abort(new FetchRefused('canceled', 'the client closed the request'));
    };
    res.on('close', onClose);
    const run = this.fetchInto(ctx, url, t);
    t.done = run.then(
      () => undefined,
      () => undefined,
    );
    try {
      const fetched = await run;
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ 'bytes-received': t.received, url: fetched.url, redirects: fetched.redirects, hashes: t.digests }));
    } finally {
      res.off('close', onClose);
    }
  }

  /** Fetches `url` into the file's staging key; sets `t`'s final state; rejects with a FetchRefused. */
  private async fetchInto(ctx: FileUploadContext, url: URL, t: Transfer): Promise<{ url: string; redirects: number }> {
    const size = ctx.file.size;
    const total = setTimeout(
      () => t.controller.abort(new FetchRefused('timeout', `the fetch took longer than ${this.options.totalTimeoutMs} ms`)),
      this.options.totalTimeoutMs,
    );
    let fetched: FetchedResponse | undefined;
    let staging: StagingWrite | undefined;
    try {
      fetched = await this.fetcher.open(url, t.controller.signal);
      const announced = fetched.contentLength;
      if (announced !== undefined && announced > size) {
        throw new FetchRefused(
          'too-large',
          `${fetched.url.host} announced ${announced} bytes (Content-Length); the declared size is ${size}`,
          { expected: size, received: announced },
        );
      }
      if (announced !== undefined && announced < size) {
        throw new FetchRefused(
          'too-short',
          `${fetched.url.host} announced ${announced} bytes (Content-Length); the declared size is ${size}`,
          { expected: size, received: announced },
        );
      }
      staging = await this.host.blobs.stage(ctx.stagingKey);
      const hashers = createHashers(Object.keys(ctx.file.hashes) as HashName[]);
      // One pass: count (stopping at size + 1), hash, write.
      await pipeline(
        fetched.body,
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            if (t.received + chunk.length > size) {
              return cb(
                new FetchRefused(
                  'too-large',
                  `the server sent more than the declared ${size} bytes; the fetch was stopped at ${size + 1}`,
                  { expected: size },
                ),
              );
            }
            t.received += chunk.length;
            hashers.update(chunk);
            cb(null, chunk);
          },
        }),
        staging.stream,
      );
      if (t.received < size) {
        throw new FetchRefused('too-short', `the server sent ${t.received} bytes; the declared size is ${size}`, {
          expected: size,
          received: t.received,
        });
      }
      await staging.commit();
      t.digests = hashers.digest();
      t.state = 'received';
      return { url: fetched.url.href, redirects: fetched.hops.length - 1 };
    } catch (err) {
      const reason = t.controller.signal.aborted ? t.controller.signal.reason : fetched?.signal.aborted ? fetched.signal.reason : err;
      await staging?.abort().catch(() => undefined);
      t.state = 'failed';
      t.failure = reason instanceof FetchRefused ? reason.message : 'the bytes could not be stored';
      throw reason;
    } finally {
      clearTimeout(total);
      fetched?.close();
    }
  }
}

/**
 * Reads a small JSON body: 413 past MAX_REQUEST_BYTES, 400 `malformed-json` when it does not parse.
 * On a refusal the request is left as it is (not destroyed) and the error carries how much was
 * read (`consumedBy`), so that `refuse` can read the rest and the client gets the answer.
 */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const tooLarge = (consumed: number) =>
    withConsumed(new ProblemError('body-too-large', `The request body is at most ${MAX_REQUEST_BYTES} bytes.`), consumed);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_REQUEST_BYTES) throw tooLarge(0);
  const chunks: Buffer[] = [];
  let length = 0;
  // destroyOnReturn: false, so that leaving the loop early does not destroy the request (rule 3).
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    length += (chunk as Buffer).length;
    if (length > MAX_REQUEST_BYTES) throw tooLarge(length);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw withConsumed(new ProblemError('malformed-json', 'The request body is not valid JSON.'), length);
  }
}

const CONSUMED = new WeakMap<object, number>();
const withConsumed = <E extends Error>(err: E, consumed: number): E => (CONSUMED.set(err, consumed), err);
/** How many body bytes had been read when `err` was thrown (0 when unknown). */
const consumedBy = (err: unknown): number => (typeof err === 'object' && err !== null ? (CONSUMED.get(err) ?? 0) : 0);

/** The answer for each way a fetch can fail; anything else goes to the host as is. */
export function toProblem(err: unknown): unknown {
  if (!(err instanceof FetchRefused)) return err;
  const extensions = { ...err.extensions };
  switch (err.kind) {
    case 'policy':
      return new ProblemError('invalid-parameter', `The URL is refused: ${err.message}.`, {
        errors: [{ source: '/url', message: err.message }],
        extensions,
      });
    case 'remote':
      return new ProblemError('invalid-parameter', `The fetch failed: ${err.message}.`, {
        errors: [{ source: '/url', message: err.message }],
        extensions,
      });
    case 'timeout':
      return new ProblemError('request-timeout', `The fetch failed: ${err.message}.`, { extensions });
    case 'too-large':
      return new ProblemError('payload-too-large', `The fetch failed: ${err.message}.`, { extensions });
    case 'too-short':
      return new ProblemError('size-mismatch', `The fetch failed: ${err.message}.`, { extensions });
    case 'canceled':
      return new ProblemError('file-not-pending', `The fetch was stopped: ${err.message}.`, { extensions });
    case 'shutdown':
      return new ProblemError('unavailable', `The fetch was stopped: ${err.message}.`, { headers: { 'Retry-After': '5' }, extensions });
  }
}
