/**
 * The composition root of a host: one tsyringe child container per server, the ports registered
 * first, then the mechanism plugins in the operator's order, then the express app on top.
 */
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import express, { type Express } from 'express';
import { pino, type Logger } from 'pino';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import {
  AUTHENTICATOR,
  AUTHORIZER,
  BLOB_STORE,
  CLOCK,
  collectMechanisms,
  distributionIdentity,
  FILE_VALIDATOR,
  MECHANISM_HOST,
  NAME_REGISTRATION_POLICY,
  PROBLEM_CONTENT_TYPE,
  ProblemError,
  registerPlugin,
  SESSION_STORE,
  toProblemDocument,
  type AttestationVerifier,
  type Authenticator,
  type Authorizer,
  type BlobStore,
  type Clock,
  type FileValidator,
  type MechanismPlugin,
  type NameRegistrationPolicy,
  type SessionStore,
  type UploadMechanism,
} from '@pep694/core';
import { legacyUploadRouter } from '@pep694/legacy-upload';
import { PageCache, publishedIndexRouter, publishedIntegrityRouter, stagePreviewRouter } from '@pep694/simple-index';
import { TokensFileAuth } from './auth/tokens-file.js';
import { ServerConfigSchema, type ServerConfig, type ServerConfigInput } from './config.js';
import { mechanismHost } from './http/mechanism-host.js';
import { createProblemRenderer } from './http/problems.js';
import { sessionApiRouter } from './http/routes.js';
import { TrustedOrigins } from './http/trusted-origin.js';
import type { AccessDeps } from './service/access.js';
import { createServiceContext, type PublishCheck, type ServiceContext } from './service/context.js';
import { reap as reapOnce, type ReapReport } from './service/reaper.js';
import { recover } from './service/recovery.js';
import { newId } from './service/secrets.js';
import { fileKey, stagingKey } from './service/transfer.js';
import { opsRouter } from './ops/endpoints.js';
import { instrumentBlobStore, instrumentSessionStore } from './ops/instrument-store.js';
import { ServerMetrics } from './ops/metrics.js';
import { FsBlobStore } from './storage/fs-blob-store.js';
import { SqliteSessionStore } from './storage/sqlite-store.js';

/** A plugin and the options to register it with. */
export interface MechanismRegistration<O = unknown> {
  readonly plugin: MechanismPlugin<O>;
  readonly options?: unknown;
}

export interface CreateServerOptions {
  readonly config: ServerConfigInput;
  /** Mechanism plugins, in the order the server advertises them (its preference). */
  readonly mechanisms?: readonly MechanismRegistration<unknown>[];
  /** Auth ports; default: tokens from `PEP694_TOKENS_FILE`, else a dev token in `<dataDir>/dev-token`. */
  readonly auth?: { readonly authenticator: Authenticator; readonly authorizer: Authorizer; readonly names: NameRegistrationPolicy };
  /**
   * Storage ports; default: SQLite at `<dataDir>/pep694.sqlite` and blobs under `<dataDir>`.
   * `close()` closes both, given or not (the blob store's `close` is optional).
   */
  readonly store?: SessionStore;
  readonly blobs?: BlobStore;
  /**
   * Verifies PEP 740 attestations at upload (e.g. `SigstoreAttestationVerifier` of
   * `@pep694/attestations-sigstore`); mechanisms get it on `MechanismHost.attestationVerifier`.
   * Without one, attestations are checked as PEP 740 objects only, stored, and never served.
   */
  readonly attestationVerifier?: AttestationVerifier;
  /** Run at completion after the hashes match, in order. */
  readonly validators?: readonly FileValidator[];
  /** Run before a publish commits; when any is given, publishing is deferred (202 + processing). */
  readonly publishChecks?: readonly PublishCheck[];
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Parent container; a child is created from it. */
  readonly container?: DependencyContainer;
}

export interface Pep694Server {
  readonly app: Express;
  readonly config: ServerConfig;
  readonly container: DependencyContainer;
  /** What the steps in `service/` are given (ports, config, background tasks): the session protocol without HTTP. */
  readonly service: ServiceContext;
  readonly mechanisms: readonly UploadMechanism[];
  /** Set when the default auth uses a development token; `created` on the start that made it. */
  readonly devToken?: { readonly token: string; readonly file: string; readonly created: boolean };
  /** Starts listening; resolves with the bound URL of the root endpoint. */
  listen(port?: number, host?: string): Promise<{ server: Server; url: string; origin: string }>;
  /** Runs one full reaper pass now, including the blob sweep. */
  reap(): Promise<ReapReport>;
  /** Stops the reaper, waits for background work, closes the HTTP server, mechanisms and store. */
  close(): Promise<void>;
}

export async function createServer(options: CreateServerOptions): Promise<Pep694Server> {
  const config = ServerConfigSchema.parse(options.config);
  const logger = options.logger ?? pino({ level: process.env.PEP694_LOG_LEVEL ?? 'info' });
  const container = (options.container ?? rootContainer).createChildContainer();

  let devToken: Pep694Server['devToken'];
  let auth = options.auth;
  if (!auth) {
    const fromEnv = TokensFileAuth.fromEnvironment(config.dataDir);
    devToken = fromEnv.devToken;
    auth = { authenticator: fromEnv.auth, authorizer: fromEnv.auth, names: fromEnv.auth };
  }
  mkdirSync(config.dataDir, { recursive: true });
  const rawStore = options.store ?? new SqliteSessionStore(join(config.dataDir, 'pep694.sqlite'), { fileIdentity: distributionIdentity });
  const rawBlobs = options.blobs ?? (await FsBlobStore.open(config.dataDir));
  // Metrics are taken at the seams: the stores wrapped here, the HTTP middleware below.
  const metrics = config.metrics.enabled
    ? new ServerMetrics({
        processMetrics: config.metrics.processMetrics,
        ...(rawStore.countSessionsByStatus ? { sessionsByStatus: () => rawStore.countSessionsByStatus!() } : {}),
        onCollectError: (err) => logger.warn({ err }, 'metrics: the sessions could not be counted'),
      })
    : undefined;
  const store = metrics ? instrumentSessionStore(rawStore, metrics) : rawStore;
  const blobs = metrics ? instrumentBlobStore(rawBlobs, metrics) : rawBlobs;
  const clock = options.clock ?? { now: () => new Date() };
  const renderer = createProblemRenderer({ logger, typeBase: config.problemTypeBase });

  // The host mechanisms are given needs only the access part of the service (auth and the
  // store's getters), so it exists before the mechanisms, and the service after them.
  const access: AccessDeps = { config, store, authenticator: auth.authenticator, authorizer: auth.authorizer };
  const host = mechanismHost(access, renderer, blobs, options.attestationVerifier);
  if (!options.attestationVerifier)
    logger.info('no attestation verifier: PEP 740 attestations are stored unverified and not served as provenance');
  container.register(SESSION_STORE, { useValue: store });
  container.register(BLOB_STORE, { useValue: blobs });
  container.register(AUTHENTICATOR, { useValue: auth.authenticator });
  container.register(AUTHORIZER, { useValue: auth.authorizer });
  container.register(NAME_REGISTRATION_POLICY, { useValue: auth.names });
  container.register(CLOCK, { useValue: clock });
  container.register(MECHANISM_HOST, { useValue: host });
  for (const v of options.validators ?? []) container.register(FILE_VALIDATOR, { useValue: v });
  for (const m of options.mechanisms ?? []) registerPlugin(container, m.plugin, m.options);

  const mechanisms = collectMechanisms(container);
  if (mechanisms.length === 0) logger.warn('no upload mechanism is registered; file uploads cannot proceed');
  const validators = container.isRegistered(FILE_VALIDATOR, true) ? container.resolveAll(FILE_VALIDATOR) : [];
  const service = createServiceContext({
    ...access,
    config,
    store,
    blobs,
    names: auth.names,
    clock,
    mechanisms,
    validators,
    publishChecks: options.publishChecks ?? [],
    logger,
  });

  // Deferred work (verification, publish) that a crash interrupted starts again now.
  recover(service);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Which node answered, when several share a store behind a load balancer (set here for an app
  // served another way; `listen()`'s server sets it before anything can refuse the request).
  const nodeId = config.nodeId;
  if (nodeId) app.use(nodeHeader(nodeId));
  if (metrics) app.use(metrics.middleware());
  const area = (name: string) => metrics?.area(name) ?? ((_req: unknown, _res: unknown, next: () => void) => next());
  let closing = false;
  // A request for a host this index does not serve is refused (421), and the origin of links is
  // recorded (see trusted-origin.ts): by `listen()`'s server before express sees the request, and
  // here for an app served another way.
  const origins = new TrustedOrigins(config);
  app.use(origins.guard());
  // /healthz, /readyz and /metrics, ahead of the root (which may be "/").
  app.use(
    opsRouter(
      {
        store: rawStore,
        blobs: rawBlobs,
        readyTimeout: config.health.readyTimeout,
        closing: () => closing,
        health: config.health.enabled,
        ...(metrics ? { metrics: { registry: metrics.exposed, token: config.metrics.token } } : {}),
        logger,
      },
      area,
    ),
  );
  // Mechanism routes first, without any body parser: they need the raw request stream.
  for (const m of mechanisms) {
    const routes = m.routes?.();
    const mount = `${config.rootPath}mechanisms/${m.identifier}`;
    if (routes) app.use(mount, area(`mechanism:${m.identifier}`), routes);
  }
  app.use(config.rootPath, area('upload'), sessionApiRouter(service));
  if (config.legacy) {
    // The legacy upload API: its own package, publishing through the same store step and rules.
    const { path, helpUrl, maxFieldBytes } = config.legacy;
    app.use(
      path.slice(0, -1),
      area('legacy'),
      legacyUploadRouter({
        authenticator: auth.authenticator,
        authorizer: auth.authorizer,
        names: auth.names,
        store,
        blobs,
        validators,
        clock,
        keys: { staging: stagingKey, file: fileKey },
        newId,
        limits: { ...config.limits, maxFieldBytes },
        inFlight: service.creating,
        ...(options.attestationVerifier ? { attestationVerifier: options.attestationVerifier } : {}),
        ...(helpUrl ? { helpUrl } : {}),
        ...(config.problemTypeBase ? { typeBase: config.problemTypeBase } : {}),
        onError: (err) => logger.error({ err }, 'legacy upload failed'),
      }),
    );
  }
  if (config.index) {
    // Read-only Simple Repository API: the published index and the stage previews (no credentials).
    // One page cache for both, so that one bound covers them (keyed by the store's change counters).
    const index = {
      store,
      blobs,
      clock,
      pageCache: new PageCache({ maxBytes: config.index.pageCacheBytes }),
      ...(config.index.downloadRedirectTtl !== undefined && { downloadRedirectTtl: config.index.downloadRedirectTtl }),
    };
    app.use(config.index.stagePath.slice(0, -1), area('stage'), stagePreviewRouter(index));
    app.use(config.index.simplePath.slice(0, -1), area('simple'), publishedIndexRouter(index));
    app.use(config.index.integrityPath.slice(0, -1), area('integrity'), publishedIntegrityRouter(index));
  }
  app.use(renderer.notFound);
  app.use(renderer.errorHandler);

  let httpServer: Server | undefined;
  let timer: NodeJS.Timeout | undefined;
  const reap = () => reapOnce(service, { sweepBlobs: true });
  if (config.reaperInterval > 0) {
    timer = setInterval(() => {
      reapOnce(service).catch((err: unknown) => logger.error({ err }, 'reaper failed'));
      // On a store several nodes share, deferred work whose node died is taken over (see recovery.ts).
      if (service.leases.shared) recover(service);
    }, config.reaperInterval);
    timer.unref();
  }

  return {
    app,
    config,
    container,
    service,
    mechanisms,
    ...(devToken ? { devToken } : {}),
    reap,
    async listen(port = 0, hostname = '127.0.0.1') {
      const { headersTimeout, requestTimeout } = config.limits;
      // Checked before express, so that an absolute-form target can still be rewritten to a path.
      const handle = (req: IncomingMessage, res: ServerResponse) => {
        if (nodeId) res.setHeader(NODE_HEADER, nodeId);
        try {
          origins.check(req);
        } catch (err) {
          metrics?.observe(req, res); // counted here: express never sees it
          renderer.send(res, err);
          return;
        }
        app(req, res);
      };
      httpServer = createHttpServer(
        {
          headersTimeout,
          requestTimeout,
          // Node enforces both timeouts only when it sweeps its connections, every 30 s by default:
          // a slowloris client would get up to 30 s more than configured. Sweep at a quarter of
          // the shorter timeout instead (between 100 ms and 30 s).
          connectionsCheckingInterval: checkingInterval(headersTimeout, requestTimeout),
        },
        handle,
      );
      // Errors node raises before a request reaches express (malformed syntax, headers or a request
      // that did not arrive within headersTimeout/requestTimeout, oversized headers) get a
      // problem+json too, in place of node's bare status line.
      httpServer.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, config));
      // No automatic `100 Continue`: handlers send it once the request is authorized (see
      // json.ts, and rule 2 on `UploadMechanism`), so a client never streams a body that will be refused.
      httpServer.on('checkContinue', handle);
      await new Promise<void>((resolve, reject) => {
        httpServer!.once('error', reject);
        httpServer!.listen(port, hostname, () => {
          // Before the first request is read: without publicUrl/allowedHosts, the bound address is served.
          origins.bound(httpServer!.address() as AddressInfo);
          resolve();
        });
      });
      const address = httpServer.address() as AddressInfo;
      const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const origin = `http://${h}:${address.port}`;
      return { server: httpServer, origin, url: `${origin}${config.rootPath}` };
    },
    async close() {
      closing = true; // /readyz answers 503 from now on
      if (timer) clearInterval(timer);
      if (httpServer) {
        const closed = new Promise<void>((resolve) => httpServer!.close(() => resolve()));
        httpServer.closeIdleConnections();
        await closed;
      }
      await service.background.idle();
      for (const m of mechanisms) await m.close?.();
      await store.close();
      await rawBlobs.close?.();
    },
  };
}

/** The response header naming the node that answered (`config.nodeId`). */
export const NODE_HEADER = 'X-PEP694-Node';

function nodeHeader(nodeId: string) {
  return (_req: IncomingMessage, res: ServerResponse, next: () => void) => {
    res.setHeader(NODE_HEADER, nodeId);
    next();
  };
}

/** How often node sweeps connections for `headersTimeout`/`requestTimeout` (0 means "none" for both). */
export function checkingInterval(headersTimeout: number, requestTimeout: number): number {
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((ms) => ms > 0), 120_000);
  return Math.min(30_000, Math.max(100, Math.floor(shortest / 4)));
}

/** Sockets whose request was refused in `answerClientError`: the rest of what they send is read, not parsed. */
const refused = new WeakSet<Duplex>();

/** Answers an error node reports on a connection (see `clientError`) and closes the connection. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, config: ServerConfig): void {
  if (refused.has(socket)) return; // the rest of a refused request, read until the client is done
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  // A reset, or a response already under way on this kept-alive connection: nothing can be answered.
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  refused.add(socket);
  const problem =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new ProblemError(
          'request-timeout',
          `The request did not arrive within the time this index allows (headers ${config.limits.headersTimeout} ms, whole request ${config.limits.requestTimeout} ms).`,
        )
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new ProblemError('headers-too-large', 'The request headers are larger than this index accepts.')
        : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? new ProblemError('body-too-large', 'The chunk extensions of the request body are too large.')
          : new ProblemError('malformed-request', 'The HTTP request is malformed.');
  const body = JSON.stringify(toProblemDocument(problem, { typeBase: config.problemTypeBase }));
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
  // Closing with unread bytes would reset the connection and lose the answer: keep reading what
  // the client still sends until it closes, for a bounded time.
  socket.once('end', () => socket.destroy());
  setTimeout(() => socket.destroy(), 5_000).unref();
}
