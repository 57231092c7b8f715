/**
 * What `GET /metrics` reports (Prometheus text format, prom-client): one registry per server, fed
 * at the seams only, never from inside the service steps: the HTTP middleware here (requests by
 * route and status, durations), the store and blob store wrappers in ./instrument-*.ts (their
 * latency, and the upload, completion and publish outcomes read off the store's transitions), and
 * the store's own count of sessions at scrape time.
 *
 * Labels are bounded: a route is the mount's area plus express's route template (never the raw
 * path), a method outside the usual few is `other`, mechanisms are the registered identifiers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PublishingSessionStatus } from '@pep694/core';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Seconds; request durations range from a status poll (ms) to a large upload (many minutes). */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
/** Seconds; one store or blob call, from a cached SQLite read (µs) to an fsync under load. */
const STORAGE_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** The process's own metrics (CPU, memory, event loop lag, GC), collected once per process however many servers it runs. */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface ServerMetricsOptions {
  /** Include the process metrics (`process_*`, `nodejs_*`). */
  readonly processMetrics: boolean;
  /** The store's count of sessions by status, read at each scrape (the `pep694_publishing_sessions` gauge). */
  readonly sessionsByStatus?: () => Promise<Partial<Record<PublishingSessionStatus, number>>>;
  /** Told when a count fails at scrape time; the gauge is then left out of that scrape. */
  readonly onCollectError?: (err: unknown) => void;
}

export class ServerMetrics {
  readonly registry = new Registry();
  /** What `/metrics` serves: this server's metrics, with the process's when asked for. */
  readonly exposed: Registry;
  readonly #area = new WeakMap<IncomingMessage, string>();

  readonly requests = new Counter({
    name: 'pep694_http_requests_total',
    help: 'HTTP requests answered, by method, route (area and route template) and status ("aborted": the client left before the answer).',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'pep694_http_request_duration_seconds',
    help: 'Time from the request to the end of its answer (uploads included), by method and route.',
    labelNames: ['method', 'route'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });
  readonly fileUploads = new Counter({
    name: 'pep694_file_uploads_total',
    help: 'File upload sessions created, by mechanism.',
    labelNames: ['mechanism'] as const,
    registers: [this.registry],
  });
  readonly uploadBytes = new Counter({
    name: 'pep694_upload_bytes_total',
    help: 'Bytes of files completed (verified and accepted), by mechanism.',
    labelNames: ['mechanism'] as const,
    registers: [this.registry],
  });
  readonly completions = new Counter({
    name: 'pep694_file_completions_total',
    help: 'File upload completions by mechanism and outcome: completed, failed (moved to error), deferred (verification in the background, counted again when it ends).',
    labelNames: ['mechanism', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly publishes = new Counter({
    name: 'pep694_publishes_total',
    help: 'Publish attempts by outcome: published, deferred, unfinished, conflict, session-state; deferred ones end as deferred-published or deferred-failed.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: 'pep694_store_operation_duration_seconds',
    help: 'Latency of session store calls, by operation and result (ok, error).',
    labelNames: ['operation', 'result'] as const,
    buckets: STORAGE_BUCKETS,
    registers: [this.registry],
  });
  readonly blobDuration = new Histogram({
    name: 'pep694_blob_operation_duration_seconds',
    help: 'Latency of blob store calls (stage opens a write, commit makes it durable), by operation and result (ok, error).',
    labelNames: ['operation', 'result'] as const,
    buckets: STORAGE_BUCKETS,
    registers: [this.registry],
  });

  constructor(opts: ServerMetricsOptions) {
    const { sessionsByStatus, onCollectError } = opts;
    if (sessionsByStatus) {
      new Gauge({
        name: 'pep694_publishing_sessions',
        help: 'Publishing sessions in the store by status (open, processing, error are live; published and canceled ones stay until forgotten after the retention).',
        labelNames: ['status'] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          try {
            for (const [status, n] of Object.entries(await sessionsByStatus())) this.set({ status }, n ?? 0);
          } catch (err) {
            onCollectError?.(err);
          }
        },
      });
    }
    this.exposed = opts.processMetrics ? Registry.merge([processMetrics(), this.registry]) : this.registry;
  }

  /** Middleware marking requests under a mount as one area (the first part of their route label). */
  area(name: string): RequestHandler {
    return (req, _res, next) => {
      this.#area.set(req, name);
      next();
    };
  }

  /** Starts timing a request; counted once its answer ends or the connection closes. */
  observe(req: IncomingMessage & { route?: { path?: unknown } }, res: ServerResponse): void {
    const end = this.requestDuration.startTimer();
    res.once('close', () => {
      const method = METHODS.has(req.method ?? '') ? req.method! : 'other';
      const area = this.#area.get(req);
      const template = req.route?.path;
      const route = area === undefined ? 'unmatched' : template === undefined ? area : `${area} ${String(template)}`;
      const status = res.writableFinished ? String(res.statusCode) : 'aborted';
      this.requests.inc({ method, route, status });
      end({ method, route });
    });
  }

  /** Express middleware form of `observe`, mounted first. */
  middleware(): RequestHandler {
    return (req, res, next) => {
      this.observe(req, res);
      next();
    };
  }

  /** Times `fn` into `histogram` when it returns a promise; anything else passes through untimed. */
  static timed<T>(histogram: Histogram<'operation' | 'result'>, operation: string, fn: () => T): T {
    const end = histogram.startTimer({ operation });
    const result = fn();
    if (!isThenable(result)) return result;
    return result.then(
      (v) => {
        end({ result: 'ok' });
        return v;
      },
      (err: unknown) => {
        end({ result: 'error' });
        throw err;
      },
    ) as T;
  }
}

function isThenable(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
