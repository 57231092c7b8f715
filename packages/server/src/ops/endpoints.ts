/**
 * The operator's endpoints, outside the Upload 2.0 root: `GET /healthz` (the process is alive and
 * serving), `GET /readyz` (it can reach its session store and its blob store, so a load balancer
 * may send it uploads) and `GET /metrics` (Prometheus text format, optionally behind a bearer
 * token). None of them touches the session protocol.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type NextFunction, type RequestHandler, type Response } from 'express';
import { ProblemError, type BlobStore, type SessionStore } from '@pep694/core';
import type { Logger } from 'pino';
import { methodNotAllowed } from '../http/problems.js';
import type { ServerMetrics } from './metrics.js';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';

export interface OpsEndpointsOptions {
  readonly store: Pick<SessionStore, 'ping'>;
  readonly blobs: Pick<BlobStore, 'ping'>;
  /** Longest wait for each ping before it counts as failed (ms). */
  readonly readyTimeout: number;
  /** True once the server is closing: not ready, so a balancer drains it. */
  readonly closing: () => boolean;
  readonly health: boolean;
  readonly metrics?: { readonly registry: ServerMetrics['exposed']; readonly token?: string | undefined };
  readonly logger: Logger;
}

/** Resolves when `ping` does within `ms`; rejects when it rejects or takes longer. A missing ping passes. */
async function probe(ping: (() => Promise<void>) | undefined, ms: number): Promise<void> {
  if (!ping) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The token compared in constant time (both sides hashed first, so their lengths never differ). */
function tokenMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer ([^\s]+)$/i.exec(header ?? '')?.[1];
  if (given === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}

const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

export function opsRouter(opts: OpsEndpointsOptions, area: (name: string) => RequestHandler): Router {
  const router = Router({ caseSensitive: true, strict: true });
  /** GET (and HEAD) only; any other method gets 405 with `Allow`. */
  const serve = (path: string, name: string, handler: RequestHandler) =>
    router
      .route(path)
      .get(area(name), noStore, handler)
      .all(area(name), methodNotAllowed(['GET', 'HEAD']));
  if (opts.health) {
    serve(HEALTH_PATH, 'healthz', (_req, res) => {
      res.json({ status: 'ok' });
    });
    serve(READY_PATH, 'readyz', (_req, res, next) => void ready(opts, res, next));
  }
  const metrics = opts.metrics;
  if (metrics) {
    serve(METRICS_PATH, 'metrics', (req, res, next) => {
      if (metrics.token !== undefined && !tokenMatches(req.headers.authorization, metrics.token)) {
        return next(
          new ProblemError('unauthenticated', 'The metrics need the bearer token the operator configured (metrics.token).', {
            headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' },
          }),
        );
      }
      metrics.registry.metrics().then((text) => {
        res.setHeader('Content-Type', metrics.registry.contentType);
        res.end(text);
      }, next);
    });
  }
  return router;
}

/** /readyz: both pings, each within `readyTimeout`; 503 naming what failed. */
async function ready(opts: OpsEndpointsOptions, res: Response, next: NextFunction): Promise<void> {
  if (opts.closing()) return next(new ProblemError('unavailable', 'Not ready: the server is shutting down.'));
  const [store, blobs] = await Promise.allSettled([
    probe(opts.store.ping?.bind(opts.store), opts.readyTimeout),
    probe(opts.blobs.ping?.bind(opts.blobs), opts.readyTimeout),
  ]);
  const checks = { store: store.status === 'fulfilled' ? 'ok' : 'failed', blobs: blobs.status === 'fulfilled' ? 'ok' : 'failed' };
  if (store.status === 'fulfilled' && blobs.status === 'fulfilled') {
    res.json({ status: 'ready', checks });
    return;
  }
  const failed: string[] = [];
  for (const [what, r] of [
    ['the session store', store],
    ['the blob store', blobs],
  ] as const) {
    if (r.status !== 'rejected') continue;
    failed.push(what);
    opts.logger.warn({ err: r.reason as unknown }, `readiness: ${what} cannot be reached`);
  }
  next(
    new ProblemError('unavailable', `Not ready: ${failed.join(' and ')} cannot be reached.`, {
      extensions: { checks },
      headers: { 'Retry-After': '5' },
    }),
  );
}
