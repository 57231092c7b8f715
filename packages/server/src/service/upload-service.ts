/**
 * The PEP 694 session protocol, without HTTP: every operation of the specification section,
 * each authorizing its principal on every call, driving the two state machines, and leaving
 * uniqueness and atomicity to the store (its upload role; the reaper and crash recovery also use
 * its housekeeping role).
 */
import type { IncomingMessage } from 'node:http';
import {
  API_VERSION,
  checkFilenameMatchesRelease,
  checkFilenameNormalized,
  createHashers,
  digestsMatch,
  distributionIdentity,
  fileUploadMachine,
  formatExpiresAt,
  parseProjectName,
  parseVersion,
  ProblemError,
  publishingSessionMachine,
  releaseKey,
  validateHashes,
  type Authenticator,
  type Authorizer,
  type BlobStore,
  type Clock,
  type CompletionOutcome,
  type CompleteFileUploadRequest,
  type CreateFileUploadRequest,
  type ExtendRequest,
  type PublishRequest,
  type CreatePublishingSessionRequest,
  type FileUploadContext,
  type FileUploadRecord,
  type NewFileUpload,
  type FileUploadSessionResponse,
  type FileValidator,
  type HashName,
  type HousekeepingStore,
  type NameRegistrationPolicy,
  type Principal,
  type PublishingSessionRecord,
  type PublishingSessionResponse,
  type UploadMechanism,
  type UploadStore,
} from '@pep694/core';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.js';
import { originOf } from '../http/trusted-origin.js';
import { Links } from './links.js';
import { resolveInstructions, storableInstructions } from './stored-instructions.js';
import { newId, sameSecret } from './secrets.js';

/** An operator's check run before a deferred publish commits (e.g. a malware scan). */
export type PublishCheck = (
  session: PublishingSessionRecord,
  files: readonly FileUploadRecord[],
) => Promise<{ ok: true } | { ok: false; notices: readonly string[]; fileNotices?: Readonly<Record<string, readonly string[]>> }>;

export interface UploadServiceDeps {
  readonly config: ServerConfig;
  /** The upload role for the session API; the housekeeping role for `reap` and `recover`. */
  readonly store: UploadStore & HousekeepingStore;
  readonly blobs: BlobStore;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly names: NameRegistrationPolicy;
  readonly clock: Clock;
  readonly mechanisms: readonly UploadMechanism[];
  readonly validators: readonly FileValidator[];
  readonly publishChecks: readonly PublishCheck[];
  readonly logger: Logger;
}

/** What every call carries: the authenticated principal and the origin links are built on. */
export interface CallContext {
  readonly principal: Principal;
  readonly origin: string;
}

/**
 * Reads and validates the request body. Called after the target is found and the principal
 * authorized, so a gone session answers 404 and a stranger 403 whatever the body says.
 */
export type BodyReader<T> = () => Promise<T>;

export interface Reply<T> {
  readonly status: number;
  readonly body?: T;
  readonly headers?: Record<string, string>;
}

const SESSION_EDITABLE = ['open', 'error'] as const;
const stagingKey = (fileId: string) => `staging/${fileId}`;
const fileKey = (fileId: string) => `files/${fileId}`;

export class UploadService {
  private readonly background = new Set<Promise<unknown>>();
  private lastBlobSweep = 0;
  /** File upload sessions whose transfer is prepared but whose row may not be stored yet (see `reap`). */
  private readonly creating = new Set<string>();
  private readonly mechanismById: ReadonlyMap<string, UploadMechanism>;

  constructor(private readonly deps: UploadServiceDeps) {
    this.mechanismById = new Map(deps.mechanisms.map((m) => [m.identifier, m]));
  }

  /** Resolves when every background task (deferred verification or publish) has finished. */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private runInBackground(what: string, task: () => Promise<unknown>): void {
    const p = task()
      .catch((err: unknown) => this.deps.logger.error({ err }, `${what} failed`))
      .finally(() => this.background.delete(p));
    this.background.add(p);
  }

  // ---- auth ----------------------------------------------------------------------------------

  /** The request's principal; 401 with `WWW-Authenticate` when credentials are missing or invalid. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const principal = await this.deps.authenticator.authenticate(authorization);
    if (principal) return principal;
    throw new ProblemError(
      'unauthenticated',
      authorization ? 'The credentials are not valid.' : 'This endpoint requires credentials in the Authorization header.',
      { headers: { 'WWW-Authenticate': this.deps.authenticator.challenge } },
    );
  }

  /**
   * PEP 694 "Authentication and Authorization": upload permission on the session's project, now.
   * For a first release (the session reserves the name) the creator stays authorized for the
   * session's lifetime, as the PEP's "Create a Publishing Session" recommends.
   */
  private async authorize(principal: Principal, session: PublishingSessionRecord): Promise<void> {
    if (await this.deps.authorizer.mayUpload(principal, session.project)) return;
    if (session.reservesName && session.createdBy === principal.id) return;
    throw forbidden(principal, session.project);
  }

  private async loadSession(id: string, opts: { canceledIsGone: boolean }): Promise<PublishingSessionRecord> {
    const session = await this.deps.store.getSession(id);
    if (!session || (opts.canceledIsGone && session.status === 'canceled')) {
      throw new ProblemError('not-found', 'No such publishing session (it may have been canceled or expired).');
    }
    return session;
  }

  private async loadFile(id: string, opts: { canceledIsGone: boolean }) {
    const file = await this.deps.store.getFile(id);
    const session = file && (await this.deps.store.getSession(file.sessionId));
    if (!file || !session || (opts.canceledIsGone && (session.status === 'canceled' || file.status === 'canceled'))) {
      throw new ProblemError('not-found', 'No such file upload session (it may have been canceled or expired).');
    }
    return { file, session };
  }

  // ---- publishing sessions -----------------------------------------------------------------

  async createSession(call: CallContext, body: CreatePublishingSessionRequest): Promise<Reply<PublishingSessionResponse>> {
    const { principal } = call;
    const project = parseProjectName(body.name);
    parseVersion(body.version);
    const { store, config, clock } = this.deps;
    const links = new Links(call.origin, config.rootPath);

    // 403 before 409, so a live session's existence is not disclosed (PEP "Multiple Session Creation Requests").
    const published = await store.isPublishedProject(project);
    const allowed = published
      ? await this.deps.authorizer.mayUpload(principal, project)
      : (await this.deps.names.mayRegister(principal, project)) || (await this.deps.authorizer.mayUpload(principal, project));
    if (!allowed) throw forbidden(principal, project, !published);

    const live = await store.countLiveSessions(principal.id);
    if (live >= config.limits.maxLiveSessionsPerPrincipal) {
      throw new ProblemError('limit-exceeded', `You have ${live} live publishing sessions; the limit is ${config.limits.maxLiveSessionsPerPrincipal}. Publish or cancel some first.`);
    }

    const now = clock.now();
    const newNames = { limit: config.limits.maxNewProjectsPerWindow, windowMs: config.limits.newProjectsWindow * 1000 };
    const result = await store.createSession({
      id: newId(),
      project,
      displayName: body.name,
      version: body.version,
      releaseKey: releaseKey(body.version),
      stageToken: newId(),
      createdBy: principal.id,
      createdAt: now,
      expiresAt: new Date(now.getTime() + config.sessionTtl * 1000),
    }, { newNames });
    if (result.kind === 'too-many-new-names') throw tooManyNewNames(result, now, config.limits.newProjectsWindow);
    if (result.kind === 'exists') {
      await this.authorize(principal, result.session);
      throw new ProblemError('session-exists', `A publishing session for ${project} ${body.version} is already ${result.session.status}; use the session in the Location header.`, {
        headers: { Location: links.session(result.session.id) },
      });
    }
    if (result.kind === 'name-reserved') {
      throw new ProblemError('name-unavailable', `The project name ${project} is reserved by a first-release session for another version; publish or cancel that session first.`);
    }
    return { status: 201, body: await this.sessionBody(result.session, links), headers: { Location: links.session(result.session.id) } };
  }

  async sessionStatus(call: CallContext, sessionId: string): Promise<Reply<PublishingSessionResponse>> {
    const { principal } = call;
    const session = await this.loadSession(sessionId, { canceledIsGone: false });
    await this.authorize(principal, session);
    return { status: 200, body: await this.sessionBody(session, new Links(call.origin, this.deps.config.rootPath)) };
  }

  async extendSession(call: CallContext, sessionId: string, readBody: BodyReader<ExtendRequest>): Promise<Reply<PublishingSessionResponse>> {
    const { principal } = call;
    const session = await this.loadSession(sessionId, { canceledIsGone: true });
    await this.authorize(principal, session);
    const extendFor = (await readBody())['extend-for'];
    if (session.status === 'published') {
      throw new ProblemError('session-not-editable', 'A published session cannot be extended.', { extensions: { state: session.status } });
    }
    const { config, clock } = this.deps;
    const ceiling = session.createdAt.getTime() + config.sessionMaxLifetime * 1000;
    const wanted = Math.min(clock.now().getTime() + extendFor * 1000, ceiling);
    // PEP "Publishing Session Extension": always a success body; expires-at never moves earlier.
    const expiresAt = new Date(Math.max(session.expiresAt.getTime(), wanted));
    const updated = (await this.deps.store.updateSession(session.id, ['open', 'processing', 'error'], { expiresAt })) ?? (await this.loadSession(sessionId, { canceledIsGone: true }));
    return { status: 200, body: await this.sessionBody(updated, new Links(call.origin, config.rootPath)) };
  }

  async cancelSession(call: CallContext, sessionId: string): Promise<Reply<never>> {
    const { principal } = call;
    const session = await this.loadSession(sessionId, { canceledIsGone: true });
    await this.authorize(principal, session);
    publishingSessionMachine.next(session.status, 'cancel'); // 409 while processing
    const result = await this.deps.store.cancelSession(session.id, SESSION_EDITABLE, this.deps.clock.now());
    if (!result) {
      // Lost a race (a publish or another cancel got there first): report the state it is in now.
      const now = await this.loadSession(sessionId, { canceledIsGone: true });
      publishingSessionMachine.next(now.status, 'cancel');
      throw new ProblemError('invalid-transition', 'The session changed while it was being canceled; try again.');
    }
    await Promise.all(result.files.map((f) => this.purgeFile(f, result.session)));
    return { status: 204 };
  }

  async publishSession(call: CallContext, sessionId: string, readBody: BodyReader<PublishRequest>): Promise<Reply<PublishingSessionResponse>> {
    const { principal } = call;
    const session = await this.loadSession(sessionId, { canceledIsGone: true });
    await this.authorize(principal, session);
    await readBody();
    const links = new Links(call.origin, this.deps.config.rootPath);
    const defer = this.deps.publishChecks.length > 0;
    const result = await this.deps.store.publish(session.id, SESSION_EDITABLE, this.deps.clock.now(), { defer });
    switch (result.kind) {
      case 'session-state':
        publishingSessionMachine.next(result.status, defer ? 'publish-deferred' : 'publish-immediate');
        throw new ProblemError('invalid-transition', `The session is ${result.status}.`);
      case 'unfinished': {
        const list = result.files.map((f) => `${f.filename} (${f.status})`).join(', ');
        throw new ProblemError('files-not-completed', `Every file must be completed before publishing; not completed: ${list}. Wait for them, or delete them.`, {
          errors: result.files.map((f) => ({ source: f.filename, message: `the file is ${f.status}, not completed` })),
          extensions: { files: result.files.map((f) => ({ ...f })) },
          headers: { Location: links.session(session.id) },
        });
      }
      case 'conflict': {
        // A synchronous publish failure: the session stays editable, the reason goes in notices.
        const other = (f: string) => result.conflictsWith?.[f];
        const named = result.filenames.map((f) => (other(f) && other(f) !== f ? `${f} (the same distribution as ${other(f)})` : f));
        const reason = `Publishing failed: already published for this release: ${named.join(', ')}. Delete or replace these files and publish again.`;
        await this.deps.store.updateSession(session.id, SESSION_EDITABLE, { notices: [...session.notices, reason] });
        throw new ProblemError('file-already-published', reason, {
          errors: result.filenames.map((f) => ({
            source: f,
            message: other(f) && other(f) !== f ? `the same distribution as ${other(f)} is already published for this release` : 'a file with this name is already published for this release',
          })),
          headers: { Location: links.session(session.id) },
        });
      }
      case 'published':
        return { status: 201, body: await this.sessionBody(result.session, links), headers: { Location: links.session(session.id) } };
      case 'processing':
        this.runInBackground('deferred publish', () => this.finishDeferredPublish(result.session));
        return {
          status: 202,
          body: await this.sessionBody(result.session, links),
          headers: { Location: links.session(session.id), 'Retry-After': String(this.deps.config.retryAfter) },
        };
    }
  }

  private async finishDeferredPublish(session: PublishingSessionRecord): Promise<void> {
    const files = await this.deps.store.listFiles(session.id);
    let outcome: Awaited<ReturnType<PublishCheck>> = { ok: true };
    for (const check of this.deps.publishChecks) {
      try {
        outcome = await check(session, files);
      } catch (err) {
        this.deps.logger.error({ err }, 'publish check threw');
        outcome = { ok: false, notices: ['Publishing failed: a check of the index failed unexpectedly; try publishing again.'] };
      }
      if (!outcome.ok) break;
    }
    await this.deps.store.settlePublish(session.id, this.deps.clock.now(), outcome);
  }

  private async sessionBody(session: PublishingSessionRecord, links: Links): Promise<PublishingSessionResponse> {
    const files = await this.deps.store.listFiles(session.id);
    // PEP 694 "Publishing Session Token": with previews on, the token, the stage URL, and file links under the token.
    const index = this.deps.config.index;
    const token = index ? session.stageToken : null;
    const body: PublishingSessionResponse = {
      meta: { 'api-version': API_VERSION },
      links: {
        session: links.session(session.id),
        upload: links.upload(session.id),
        publish: links.publish(session.id),
        extend: links.extend(session.id),
      },
      mechanisms: this.deps.mechanisms.map((m) => m.identifier),
      'expires-at': formatExpiresAt(session.expiresAt),
      status: session.status,
      files: Object.fromEntries(
        files
          .filter((f) => f.status !== 'canceled')
          .map((f) => [
            f.filename,
            {
              status: f.status as Exclude<typeof f.status, 'canceled'>,
              link: token ? links.stagedFile(token, f.id) : links.file(f.id),
              ...(f.notices.length > 0 ? { notices: [...f.notices] } : {}),
            },
          ]),
      ),
    };
    if (session.notices.length > 0) body.notices = [...session.notices];
    if (index && token) {
      body['session-token'] = token;
      body.links.stage = links.stage(index.stagePath, token);
      if (session.status === 'published') {
        // Where each file is now served publicly (`links` and `files[].link` keep their PEP meaning).
        const published = files.filter((f) => f.status === 'completed').map((f) => [f.filename, links.publishedFile(index.simplePath, session.project, f.filename)]);
        body.meta = { ...body.meta, [`_${this.deps.config.indexId}`]: { 'published-files': Object.fromEntries(published) } };
      }
    }
    return body;
  }

  /**
   * `{root}stage/{token}/files/{file}` (the token form of `files[].link`): the file id, when the file
   * belongs to the session holding that stage token; 404 otherwise or when previews are off.
   */
  async stagedFileId(token: string, fileId: string): Promise<string> {
    const file = this.deps.config.index ? await this.deps.store.getFile(fileId) : undefined;
    const session = file && (await this.deps.store.getSession(file.sessionId));
    if (!file || !session || session.stageToken === null || !sameSecret(session.stageToken, token)) {
      throw new ProblemError('not-found', 'No such file upload session (it may have been canceled or expired).');
    }
    return file.id;
  }

  // ---- file upload sessions ------------------------------------------------------------------

  async createFile(call: CallContext, sessionId: string, readBody: BodyReader<CreateFileUploadRequest>): Promise<Reply<FileUploadSessionResponse>> {
    const { principal } = call;
    const session = await this.loadSession(sessionId, { canceledIsGone: true });
    await this.authorize(principal, session);
    const body = await readBody();
    const { config, store, clock } = this.deps;
    const links = new Links(call.origin, config.rootPath);

    checkFilenameMatchesRelease(body.filename, session.project, session.version);
    checkFilenameNormalized(body.filename);
    const identity = distributionIdentity(body.filename);
    const hashes = validateHashes(body.hashes, { maxAlgorithms: config.limits.maxHashes });
    const mechanism = this.mechanismById.get(body.mechanism);
    if (!mechanism) {
      throw new ProblemError('mechanism-unsupported', `The mechanism "${body.mechanism.slice(0, 100)}" is not supported here; this index offers: ${[...this.mechanismById.keys()].join(', ')}.`, {
        errors: [{ source: '/mechanism', message: 'not one of the advertised mechanisms' }],
      });
    }
    if (body.size > config.limits.maxFileSize) {
      throw new ProblemError('limit-exceeded', `The file is ${body.size} bytes; this index accepts files up to ${config.limits.maxFileSize} bytes.`, {
        errors: [{ source: '/size', message: `larger than ${config.limits.maxFileSize}` }],
      });
    }
    publishingSessionMachine.next(session.status, 'file-changed'); // 409 unless open or error
    // Best-effort early check (PEP "Create a File Upload Session"); publish re-checks atomically.
    const published = await store.findPublishedIdentity(session.project, identity);
    if (published !== undefined) throw alreadyPublished(body.filename, published);

    const offer = { project: session.project, version: session.version, filename: body.filename, size: body.size, hashes };
    const negotiation = await mechanism.negotiate(offer);
    if (!negotiation.accept) {
      throw new ProblemError('mechanism-declined', `The mechanism ${mechanism.identifier} cannot take this file: ${negotiation.reason}`, {
        errors: [{ source: '/mechanism', message: negotiation.reason }],
      });
    }

    const now = clock.now();
    const expiresAt = new Date(Math.min(now.getTime() + config.fileTtl * 1000, session.expiresAt.getTime()));
    const input = { id: newId(), sessionId: session.id, filename: body.filename, size: body.size, hashes, mechanism: mechanism.identifier, createdAt: now, expiresAt, identity, createdBy: principal.id };
    // The mechanism prepares the transfer first, so the file upload session is stored in one write,
    // instructions included; if it cannot be stored, `cancel` drops what it prepared (rule 5 on
    // `UploadMechanism`).
    const ctx = this.context({ ...input, status: 'pending' }, session, links);
    // Until the row is stored, the reaper's sweep must leave what the mechanism prepared alone.
    this.creating.add(input.id);
    try {
      return await this.prepareAndStoreFile(input, ctx, mechanism, session, links, body.filename);
    } finally {
      this.creating.delete(input.id);
    }
  }

  private async prepareAndStoreFile(
    input: NewFileUpload,
    ctx: FileUploadContext,
    mechanism: UploadMechanism,
    session: PublishingSessionRecord,
    links: Links,
    filename: string,
  ): Promise<Reply<FileUploadSessionResponse>> {
    const { config, store } = this.deps;
    const map = await mechanism.instructions(ctx);
    const drop = async () => {
      try {
        await mechanism.cancel?.(ctx);
      } catch (err) {
        this.deps.logger.warn({ err, file: input.id }, 'mechanism cancel failed');
      }
    };
    if (map.identifier !== mechanism.identifier) {
      await drop();
      throw new Error(`instructions of ${mechanism.identifier} carry identifier ${String(map.identifier)}`);
    }
    const limits = { maxFiles: config.limits.maxFilesPerSession, maxStagedBytes: config.limits.maxStagedBytesPerPrincipal };
    // Stored origin-free: whoever reads this file upload session later gets their own trusted origin.
    const result = await store.createFile({ ...input, instructions: storableInstructions(map, links.origin) }, limits).catch(async (err: unknown) => {
      await drop();
      throw err;
    });
    if (result.kind !== 'created') await drop();
    switch (result.kind) {
      case 'exists':
        // PEP "Replacing a Partially or Fully Uploaded File": in-progress files cannot be replaced.
        throw new ProblemError('file-exists', `${filename} is already ${result.file.status} in this session; delete it (DELETE its file upload session) before uploading it again.`, {
          headers: { Location: links.file(result.file.id) },
          extensions: { state: result.file.status },
        });
      case 'same-distribution':
        throw sameDistribution(filename, result.file, links);
      case 'published':
        throw alreadyPublished(filename, result.filename);
      case 'over-quota':
        throw overQuota(input.size, result.quota, result.used);
      case 'session-state':
        publishingSessionMachine.next(result.status, 'file-changed');
        throw new ProblemError('session-not-editable', `The session is ${result.status}.`);
      case 'too-many-files':
        throw new ProblemError('limit-exceeded', `A publishing session may hold at most ${result.limit} files.`);
      case 'created':
        break;
    }
    if (result.replaced) await this.purgeFile(result.replaced, session);
    return {
      status: 202,
      body: this.fileBody(result.file, links),
      headers: { Location: links.file(result.file.id), 'Retry-After': String(config.retryAfter) },
    };
  }

  async fileStatus(call: CallContext, fileId: string): Promise<Reply<FileUploadSessionResponse>> {
    const { principal } = call;
    const { file, session } = await this.loadFile(fileId, { canceledIsGone: false });
    await this.authorize(principal, session);
    const links = new Links(call.origin, this.deps.config.rootPath);
    const body = this.fileBody(file, links);
    const mechanism = this.mechanismById.get(file.mechanism);
    if (file.status === 'pending' && mechanism) {
      const transfer = await mechanism.status(this.context(file, session, links));
      body.meta = { ...body.meta, [`_${this.deps.config.indexId}`]: { 'bytes-received': transfer.bytesReceived } };
    }
    const busy = file.status === 'pending' || file.status === 'processing';
    return { status: 200, body, headers: busy ? { 'Retry-After': String(this.deps.config.retryAfter) } : {} };
  }

  async extendFile(call: CallContext, fileId: string, readBody: BodyReader<ExtendRequest>): Promise<Reply<FileUploadSessionResponse>> {
    const { principal } = call;
    const { file, session } = await this.loadFile(fileId, { canceledIsGone: true });
    await this.authorize(principal, session);
    const extendFor = (await readBody())['extend-for'];
    publishingSessionMachine.next(session.status, 'file-changed');
    // A file upload session cannot outlive its publishing session.
    const wanted = Math.min(this.deps.clock.now().getTime() + extendFor * 1000, session.expiresAt.getTime());
    const expiresAt = new Date(Math.max(file.expiresAt.getTime(), wanted));
    const updated = (await this.deps.store.updateFile(file.id, ['pending', 'processing', 'completed', 'error'], { expiresAt })) ?? file;
    return { status: 200, body: this.fileBody(updated, new Links(call.origin, this.deps.config.rootPath)) };
  }

  async deleteFile(call: CallContext, fileId: string): Promise<Reply<never>> {
    const { principal } = call;
    const { file, session } = await this.loadFile(fileId, { canceledIsGone: true });
    await this.authorize(principal, session);
    publishingSessionMachine.next(session.status, 'file-changed');
    fileUploadMachine.next(file.status, 'cancel'); // 409 while processing
    const updated = await this.deps.store.updateFile(file.id, ['pending', 'completed', 'error'], { status: 'canceled' }, SESSION_EDITABLE);
    if (!updated) {
      const now = await this.loadFile(fileId, { canceledIsGone: true });
      publishingSessionMachine.next(now.session.status, 'file-changed');
      fileUploadMachine.next(now.file.status, 'cancel');
      throw new ProblemError('invalid-transition', 'The file changed while it was being deleted; try again.');
    }
    await this.purgeFile(file, session);
    return { status: 204 };
  }

  async completeFile(call: CallContext, fileId: string, readBody: BodyReader<CompleteFileUploadRequest>): Promise<Reply<FileUploadSessionResponse>> {
    const { principal } = call;
    const { file, session } = await this.loadFile(fileId, { canceledIsGone: true });
    await this.authorize(principal, session);
    await readBody();
    publishingSessionMachine.next(session.status, 'file-changed');
    if (!fileUploadMachine.allows(file.status, 'complete-immediate')) fileUploadMachine.next(file.status, 'complete-immediate');
    const links = new Links(call.origin, this.deps.config.rootPath);
    const mechanism = this.mechanismById.get(file.mechanism);
    if (!mechanism) throw await this.fail(file, new ProblemError('mechanism-unsupported', `The mechanism ${file.mechanism} is no longer offered by this index.`));
    const ctx = this.context(file, session, links);
    const headers = { Location: links.file(file.id) };

    await this.reclaimMoved(file.id);
    const outcome = await mechanism.completion(ctx);
    if (outcome.kind === 'incomplete') {
      throw await this.fail(file, new ProblemError('upload-incomplete', outcome.detail, { extensions: { expected: file.size, received: outcome.received } }));
    }
    if (outcome.size !== file.size) {
      throw await this.fail(file, new ProblemError('size-mismatch', `Expected ${file.size} bytes (the declared size), received ${outcome.size}.`, {
        extensions: { expected: file.size, received: outcome.size },
      }));
    }
    const missing = (Object.keys(file.hashes) as HashName[]).filter((h) => outcome.digests[h] === undefined);
    if (outcome.defer || (missing.length > 0 && file.size > this.deps.config.limits.deferVerificationAbove)) {
      // The attestations go into the row with `processing`: if a crash interrupts the deferred
      // work, `recover` has nothing else to take them from (the mechanism's copy may be swept).
      const attestations = outcome.attestations ? [...outcome.attestations] : null;
      const processing = await this.deps.store.updateFile(file.id, ['pending'], { status: 'processing', attestations }, SESSION_EDITABLE);
      if (!processing) throw await this.raceLost(fileId);
      this.runInBackground('deferred verification', async () => {
        try {
          await this.verifyAndAccept(processing, session, outcome, ['processing']);
        } catch (err) {
          await this.fail(processing, err, ['processing']);
        }
      });
      return { status: 202, body: this.fileBody(processing, links), headers: { ...headers, 'Retry-After': String(this.deps.config.retryAfter) } };
    }
    let completed: FileUploadRecord;
    try {
      completed = await this.verifyAndAccept(file, session, outcome, ['pending']);
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'invalid-transition') throw err;
      // A DELETE or cancel that raced this completion removed the bytes under us: not a fault.
      if ((await this.deps.store.getFile(file.id))?.status !== 'pending') throw await this.raceLost(file.id);
      throw await this.fail(file, err);
    }
    return { status: 201, body: this.fileBody(completed, links), headers };
  }

  /**
   * Checks every declared hash (computing what the mechanism did not, in one read of the staged
   * bytes), runs the validators, moves the bytes to their permanent key and marks the file
   * completed. Throws a ProblemError naming what failed.
   */
  private async verifyAndAccept(
    file: FileUploadRecord,
    session: PublishingSessionRecord,
    outcome: Extract<CompletionOutcome, { kind: 'received' }>,
    from: readonly ('pending' | 'processing')[],
  ): Promise<FileUploadRecord> {
    const { blobs, store } = this.deps;
    const staged = stagingKey(file.id);
    const digests: Partial<Record<HashName, string>> = { ...outcome.digests };
    const missing = (Object.keys(file.hashes) as HashName[]).filter((h) => digests[h] === undefined);
    if (missing.length > 0) {
      const hashers = createHashers(missing);
      for await (const chunk of await blobs.read(staged)) hashers.update(chunk as Buffer);
      Object.assign(digests, hashers.digest());
    }
    const wrong = digestsMatch(file.hashes, digests);
    if (wrong.length > 0) {
      throw new ProblemError('hash-mismatch', `The uploaded bytes do not match the declared ${wrong.join(', ')} digest${wrong.length > 1 ? 's' : ''}.`, {
        errors: wrong.map((h) => ({ source: `/hashes/${h}`, message: `declared ${file.hashes[h]}, received ${digests[h]}` })),
      });
    }
    let coreMetadata: Uint8Array | null = null;
    let requiresPython: string | null = null;
    for (const validator of this.deps.validators) {
      const result = await validator.validate({
        project: session.project,
        version: session.version,
        filename: file.filename,
        size: file.size,
        read: (range) => blobs.read(staged, range),
      });
      if (!result.ok) throw new ProblemError('invalid-artifact', result.detail, { errors: [...result.errors] });
      coreMetadata = result.coreMetadata ?? coreMetadata;
      requiresPython = result.requiresPython ?? requiresPython;
    }
    const key = fileKey(file.id);
    await blobs.move(staged, key);
    const completed = await store.updateFile(
      file.id,
      from,
      { status: 'completed', blobKey: key, attestations: outcome.attestations ? [...outcome.attestations] : null, coreMetadata, requiresPython },
      SESSION_EDITABLE,
    );
    if (!completed) {
      // Deleted or canceled meanwhile (DELETE raced completion): its bytes must not linger.
      await blobs.delete(key);
      throw await this.raceLost(file.id);
    }
    return completed;
  }

  /**
   * A completion killed after moving the verified bytes to their permanent key but before
   * recording them leaves them there with the file still pending or processing (the reaper keeps
   * them): they go back to staging, where the retried completion looks for them.
   */
  private async reclaimMoved(fileId: string): Promise<void> {
    const { blobs } = this.deps;
    if ((await blobs.size(stagingKey(fileId))) !== undefined || (await blobs.size(fileKey(fileId))) === undefined) return;
    await blobs.move(fileKey(fileId), stagingKey(fileId));
  }

  /**
   * Crash recovery, run once at startup: deferred work that a crash interrupted is started again,
   * since nothing else would ever move these sessions and files out of `processing`. A file's
   * staged bytes are verified again (the mechanism's digests died with the process); a session's
   * publish checks run again (its filenames are still claimed). Attestations were recorded with
   * `processing`.
   */
  recover(): void {
    this.runInBackground('crash recovery', async () => {
      const { store } = this.deps;
      const { sessions, files } = await store.listProcessing();
      for (const file of files) {
        const session = await store.getSession(file.sessionId);
        if (!session) continue;
        this.runInBackground('deferred verification (recovered)', async () => {
          try {
            await this.reclaimMoved(file.id);
            const attestations = file.attestations ? { attestations: file.attestations } : {};
            await this.verifyAndAccept(file, session, { kind: 'received', size: file.size, digests: {}, ...attestations }, ['processing']);
          } catch (err) {
            await this.fail(file, err, ['processing']);
          }
        });
      }
      for (const session of sessions) this.runInBackground('deferred publish (recovered)', () => this.finishDeferredPublish(session));
    });
  }

  /** Moves the file to error with the reason in its notices, purges its bytes, returns the problem. */
  private async fail(file: FileUploadRecord, err: unknown, from: readonly ('pending' | 'processing')[] = ['pending']): Promise<unknown> {
    if (!(err instanceof ProblemError) || err.status >= 500) this.deps.logger.error({ err }, 'completion failed');
    const reason = err instanceof ProblemError && err.status < 500 ? err.detail : 'The file could not be verified because of a server error.';
    await this.deps.store.updateFile(file.id, from, { status: 'error', notices: [...file.notices, reason] });
    await this.deps.blobs.delete(stagingKey(file.id));
    return err;
  }

  private async raceLost(fileId: string): Promise<ProblemError> {
    const now = await this.deps.store.getFile(fileId);
    return new ProblemError('invalid-transition', `The file upload session changed meanwhile; it is now ${now?.status ?? 'gone'}.`, {
      extensions: { state: now?.status },
    });
  }

  /** Drops a file's bytes and the mechanism's transfer state (cancel, delete, replace, expiry). */
  private async purgeFile(file: FileUploadRecord, session: PublishingSessionRecord): Promise<void> {
    const mechanism = this.mechanismById.get(file.mechanism);
    try {
      await mechanism?.cancel?.(this.context(file, session, new Links('http://purge.invalid', this.deps.config.rootPath)));
    } catch (err) {
      this.deps.logger.warn({ err, file: file.id }, 'mechanism cancel failed');
    }
    await this.deps.blobs.delete(stagingKey(file.id));
    // Only unpublished files are purged (published sessions cannot be canceled), so this never
    // touches a published blob.
    if (file.blobKey) await this.deps.blobs.delete(file.blobKey);
  }

  private fileBody(file: FileUploadRecord, links: Links): FileUploadSessionResponse {
    const extendable = file.status !== 'canceled';
    const body: FileUploadSessionResponse = {
      meta: { 'api-version': API_VERSION },
      links: {
        'file-upload-session': links.file(file.id),
        complete: links.complete(file.id),
        ...(extendable ? { extend: links.fileExtend(file.id) } : {}),
      },
      status: file.status,
      'expires-at': formatExpiresAt(file.expiresAt),
      mechanism: file.instructions
        ? resolveInstructions(file.instructions, links.origin, `${this.deps.config.rootPath}mechanisms/${file.mechanism}`)
        : { identifier: file.mechanism },
    };
    if (file.notices.length > 0) body.notices = [...file.notices];
    return body;
  }

  private context(
    file: Pick<FileUploadRecord, 'id' | 'filename' | 'size' | 'hashes' | 'status' | 'expiresAt' | 'mechanism'>,
    session: PublishingSessionRecord,
    links: Links,
  ): FileUploadContext {
    return {
      session: { id: session.id, project: session.project, version: session.version },
      file: { id: file.id, filename: file.filename, size: file.size, hashes: file.hashes, status: file.status, expiresAt: file.expiresAt },
      baseUrl: links.mechanism(file.mechanism),
      stagingKey: stagingKey(file.id),
    };
  }

  // ---- for mechanism routes (the host wraps this as MechanismHost) ---------------------------

  async authorizeTransfer(req: IncomingMessage, identifier: string, fileId: string): Promise<FileUploadContext> {
    const principal = await this.authenticate(req.headers.authorization);
    const found = await this.deps.store.getFile(fileId);
    const session = found && (await this.deps.store.getSession(found.sessionId));
    if (!found || !session || found.mechanism !== identifier || session.status === 'canceled' || found.status === 'canceled') {
      throw new ProblemError('not-found', 'No such file upload session for this mechanism.');
    }
    await this.authorize(principal, session);
    publishingSessionMachine.next(session.status, 'file-changed');
    fileUploadMachine.next(found.status, 'transfer');
    return this.context(found, session, new Links(originOf(req), this.deps.config.rootPath));
  }

  // ---- reaper --------------------------------------------------------------------------------

  /**
   * One reaper pass: cancels expired sessions and expired pending files, forgets terminal
   * sessions past retention, and deletes blobs no record refers to.
   */
  async reap(opts: { sweepBlobs?: boolean } = {}): Promise<{ expired: number; forgotten: number; orphans: number }> {
    const { store, blobs, clock, config } = this.deps;
    const now = clock.now();
    // Walking every blob is the expensive part: it runs once per blobSweepInterval, or when asked.
    const sweep = opts.sweepBlobs ?? now.getTime() - this.lastBlobSweep >= config.blobSweepInterval;
    let expired = 0;
    for (const session of await store.listExpiredSessions(now)) {
      const result = await store.cancelSession(session.id, SESSION_EDITABLE, now);
      if (!result) continue;
      expired += 1;
      await store.updateSession(session.id, ['canceled'], { notices: [...session.notices, 'The session expired and was canceled.'] });
      await Promise.all(result.files.map((f) => this.purgeFile(f, result.session)));
    }
    for (const file of await store.listExpiredFiles(now)) {
      const updated = await store.updateFile(file.id, ['pending'], { status: 'canceled', notices: [...file.notices, 'The file upload session expired.'] });
      const session = updated && (await store.getSession(file.sessionId));
      if (session) await this.purgeFile(file, session);
    }
    const forgotten = await store.forgetEndedSessions(new Date(now.getTime() - config.retention * 1000));
    let orphans = 0;
    if (!sweep) return { expired, forgotten, orphans };
    this.lastBlobSweep = now.getTime();
    for (const prefix of ['staging/', 'files/']) {
      for await (const key of blobs.list(prefix)) {
        const id = key.slice(prefix.length);
        const file = await store.getFile(id);
        const inFlight = file && (file.status === 'pending' || file.status === 'processing');
        if (inFlight || (await store.isBlobReferenced(key))) continue;
        await blobs.delete(key);
        orphans += 1;
      }
    }
    // Transfer state mechanisms keep outside the blob store (e.g. tus uploads on disk).
    const keep = async (fileId: string) => {
      if (this.creating.has(fileId)) return true;
      const status = (await store.getFile(fileId))?.status;
      return status === 'pending' || status === 'processing';
    };
    for (const m of this.deps.mechanisms) {
      try {
        orphans += (await m.sweep?.(keep)) ?? 0;
      } catch (err) {
        this.deps.logger.warn({ err, mechanism: m.identifier }, 'mechanism sweep failed');
      }
    }
    // Temp files of stagings a crash interrupted; live ones are younger than the longest request.
    const tempAge = Math.max(config.limits.requestTimeout, 3_600_000) * 2;
    orphans += (await blobs.sweepTemp?.(tempAge)) ?? 0;
    return { expired, forgotten, orphans };
  }
}

function forbidden(principal: Principal, project: string, registration = false): ProblemError {
  return new ProblemError(
    'forbidden',
    registration
      ? `${principal.id} may not register the new project name ${project}.`
      : `${principal.id} may not upload to ${project}.`,
  );
}

/** 409: `published` (a file of the same identity) is published, or claimed by a publish in flight. */
function alreadyPublished(filename: string, published: string = filename): ProblemError {
  const what = published === filename ? filename : `${filename} is the same distribution as ${published}, which`;
  return new ProblemError('file-already-published', `${what} is already published for this release (or is being published by another session); published files are immutable.`, {
    errors: [{ source: '/filename', message: published === filename ? 'already published' : `the same distribution as ${published}, already published` }],
    extensions: { 'published-filename': published },
  });
}

/** 409: another spelling of the same distribution is in the session (`Location`: its file upload session). */
function sameDistribution(filename: string, file: FileUploadRecord, links: Links): ProblemError {
  return new ProblemError(
    'file-exists',
    `${filename} is the same distribution as ${file.filename}, which is already ${file.status} in this session (same name, version, build tag and tags); delete that file upload session first, or upload under its name.`,
    { headers: { Location: links.file(file.id) }, extensions: { state: file.status, filename: file.filename } },
  );
}

const GiB = 1024 ** 3;
const showBytes = (n: number) => (n >= GiB / 10 ? `${n} bytes (${(n / GiB).toFixed(2)} GiB)` : `${n} bytes`);

/**
 * 409 `quota-exceeded`: PEP 694 "Create a File Upload Session" names quota checks among the
 * sanity checks at this request and requires 409 when "the upload cannot proceed".
 */
function overQuota(size: number, quota: number, used: number): ProblemError {
  return new ProblemError(
    'quota-exceeded',
    `This file (${showBytes(size)}) would exceed your quota of staged, unpublished files: the quota is ${showBytes(quota)}, and ${showBytes(used)} are in use. Publish, delete or cancel staged files first.`,
    { errors: [{ source: '/size', message: `over the quota by ${used + size - quota} bytes` }], extensions: { quota, used, size } },
  );
}

/** 429 with `Retry-After` (RFC 6585 section 4): the principal registered or reserved too many new names lately. */
function tooManyNewNames(r: { limit: number; registered: number; reserved: number; retryAt: Date }, now: Date, windowSeconds: number): ProblemError {
  const retryAfter = Math.max(1, Math.ceil((r.retryAt.getTime() - now.getTime()) / 1000));
  return new ProblemError(
    'rate-limited',
    `You may register at most ${r.limit} new project names per ${windowSeconds} s; you registered ${r.registered} in that time and your live sessions reserve ${r.reserved}. Retry after ${retryAfter} s, or publish or cancel a first-release session.`,
    { headers: { 'Retry-After': String(retryAfter) }, extensions: { limit: r.limit, registered: r.registered, reserved: r.reserved } },
  );
}
