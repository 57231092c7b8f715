/**
 * What every step of the session protocol is given: the ports and policies the host composed
 * (`ServiceDeps`), and the little state the steps share within one process. Steps are plain
 * functions of this context and the call (`CallContext`); none of them sees HTTP.
 */
import type {
  BlobStore,
  Clock,
  FileUploadSummary,
  FileValidator,
  HousekeepingStore,
  IndexReadStore,
  NameRegistrationPolicy,
  Principal,
  PublishingSessionRecord,
  UploadMechanism,
  UploadStore,
} from '@pep694/core';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.js';
import type { AccessDeps } from './access.js';
import { BackgroundTasks } from './background.js';
import { WorkLeases } from './leases.js';
import { Links } from './links.js';

/** An operator's check run before a deferred publish commits (e.g. a malware scan). */
export type PublishCheck = (
  session: PublishingSessionRecord,
  files: readonly FileUploadSummary[],
) => Promise<{ ok: true } | { ok: false; notices: readonly string[]; fileNotices?: Readonly<Record<string, readonly string[]>> }>;

export interface ServiceDeps extends AccessDeps {
  readonly config: ServerConfig;
  /**
   * The upload role for the session API; the housekeeping role for the reaper and crash recovery;
   * one read of the index role, for what a 409 says of the published file it names.
   */
  readonly store: UploadStore & HousekeepingStore & Pick<IndexReadStore, 'getPublishedFile'>;
  readonly blobs: BlobStore;
  readonly names: NameRegistrationPolicy;
  readonly clock: Clock;
  /** In the operator's order: the order `mechanisms` advertises them. */
  readonly mechanisms: readonly UploadMechanism[];
  readonly validators: readonly FileValidator[];
  readonly publishChecks: readonly PublishCheck[];
  readonly logger: Logger;
}

export interface ServiceContext extends ServiceDeps {
  readonly mechanismById: ReadonlyMap<string, UploadMechanism>;
  /** Deferred verification and publish, and crash recovery; `idle()` before closing. */
  readonly background: BackgroundTasks;
  /**
   * File upload sessions whose transfer is prepared but whose row may not be stored yet: the
   * reaper's sweep of mechanism state spares them (see `createFile`).
   */
  readonly creating: Set<string>;
  /** When the reaper last walked the blob store (ms since the epoch). */
  lastBlobSweep: number;
  /** Work that must run once, on one node at a time (deferred work, reaper passes). */
  readonly leases: WorkLeases;
}

export function createServiceContext(deps: ServiceDeps): ServiceContext {
  return {
    ...deps,
    mechanismById: new Map(deps.mechanisms.map((m) => [m.identifier, m])),
    background: new BackgroundTasks(deps.logger),
    creating: new Set(),
    lastBlobSweep: 0,
    leases: new WorkLeases(deps.store, deps.logger, deps.config.workLeaseTtl),
  };
}

/** What every call carries: the authenticated principal and the trusted origin links are built on. */
export interface CallContext {
  readonly principal: Principal;
  readonly origin: string;
}

/**
 * Reads and validates the request body. Called after the target is found and the principal
 * authorized, so a gone session answers 404 and a stranger 403 whatever the body says.
 */
export type BodyReader<T> = () => Promise<T>;

/** A step's answer; the route writes it as JSON (or an empty body). */
export interface Reply<T> {
  readonly status: number;
  readonly body?: T;
  readonly headers?: Record<string, string>;
}

/** The links of this call's responses, on its trusted origin. */
export function linksFor(ctx: Pick<ServiceDeps, 'config'>, call: Pick<CallContext, 'origin'>): Links {
  return new Links(call.origin, ctx.config.rootPath);
}
