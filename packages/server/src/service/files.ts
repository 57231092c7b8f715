/**
 * File upload sessions: create one (walk step 2: the checks of core, the mechanism's `negotiate`
 * and `instructions`, one store write), status, extend and delete. The states each store call
 * expects come from the two machines of core.
 */
import {
  checkFilenameMatchesRelease,
  checkFilenameNormalized,
  distributionIdentity,
  fileUploadMachine,
  IN_FLIGHT_FILE_STATES,
  LIVE_FILE_STATES,
  ProblemError,
  publishingSessionMachine,
  validateHashes,
  type CreateFileUploadRequest,
  type ExtendRequest,
  type FileUploadContext,
  type FileUploadSessionResponse,
  type NewFileUpload,
  type PublishingSessionRecord,
  type UploadMechanism,
} from '@pep694/core';
import { authorizedFile, authorizedSession, loadFile } from './access.js';
import { fileBody } from './bodies.js';
import { linksFor, type BodyReader, type CallContext, type Reply, type ServiceContext } from './context.js';
import type { Links } from './links.js';
import { purgeFile } from './purge.js';
import { alreadyPublished, overQuota, sameDistribution } from './refusals.js';
import { newId } from './secrets.js';
import { storableInstructions } from './stored-instructions.js';
import { transferContext } from './transfer.js';

/** `POST links.upload`: PEP 694 "Create a File Upload Session" (the file's `create` event). */
export async function createFile(
  ctx: ServiceContext,
  call: CallContext,
  sessionId: string,
  readBody: BodyReader<CreateFileUploadRequest>,
): Promise<Reply<FileUploadSessionResponse>> {
  const session = await authorizedSession(ctx, call, sessionId, { canceledIsGone: true });
  const body = await readBody();
  const { config, store, clock } = ctx;
  const links = linksFor(ctx, call);

  checkFilenameMatchesRelease(body.filename, session.project, session.version);
  checkFilenameNormalized(body.filename);
  const identity = distributionIdentity(body.filename);
  const hashes = validateHashes(body.hashes, { maxAlgorithms: config.limits.maxHashes });
  const mechanism = ctx.mechanismById.get(body.mechanism);
  if (!mechanism) {
    throw new ProblemError(
      'mechanism-unsupported',
      `The mechanism "${body.mechanism.slice(0, 100)}" is not supported here; this index offers: ${[...ctx.mechanismById.keys()].join(', ')}.`,
      {
        errors: [{ source: '/mechanism', message: 'not one of the advertised mechanisms' }],
      },
    );
  }
  if (body.size > config.limits.maxFileSize) {
    throw new ProblemError(
      'limit-exceeded',
      `The file is ${body.size} bytes; this index accepts files up to ${config.limits.maxFileSize} bytes.`,
      {
        errors: [{ source: '/size', message: `larger than ${config.limits.maxFileSize}` }],
      },
    );
  }
  publishingSessionMachine.next(session.status, 'file-changed'); // 409 unless open or error
  // Best-effort early check (PEP "Create a File Upload Session"); publish re-checks atomically.
  const published = await store.findPublishedIdentity(session.project, identity);
  if (published !== undefined) throw await refusePublished(store, session.project, body.filename, published);

  const offer = { project: session.project, version: session.version, filename: body.filename, size: body.size, hashes };
  const negotiation = await mechanism.negotiate(offer);
  if (!negotiation.accept) {
    throw new ProblemError('mechanism-declined', `The mechanism ${mechanism.identifier} cannot take this file: ${negotiation.reason}`, {
      errors: [{ source: '/mechanism', message: negotiation.reason }],
    });
  }

  const now = clock.now();
  const expiresAt = new Date(Math.min(now.getTime() + config.fileTtl * 1000, session.expiresAt.getTime()));
  const input = {
    id: newId(),
    sessionId: session.id,
    filename: body.filename,
    size: body.size,
    hashes,
    mechanism: mechanism.identifier,
    createdAt: now,
    expiresAt,
    identity,
    createdBy: call.principal.id,
  };
  // The mechanism prepares the transfer first, so the file upload session is stored in one write,
  // instructions included; if it cannot be stored, `cancel` drops what it prepared (rule 5 on
  // `UploadMechanism`).
  const transfer = transferContext({ ...input, status: fileUploadMachine.initial }, session, links);
  // Until the row is stored, the reaper's sweep must leave what the mechanism prepared alone.
  ctx.creating.add(input.id);
  try {
    return await prepareAndStoreFile(ctx, input, transfer, mechanism, session, links);
  } finally {
    ctx.creating.delete(input.id);
  }
}

/** The 409 for a file whose distribution `published` holds, with its sha256 once it is published (not only claimed). */
async function refusePublished(store: ServiceContext['store'], project: string, filename: string, published = filename) {
  const file = await store.getPublishedFile(project, published);
  return alreadyPublished(filename, published, file?.hashes.sha256);
}

async function prepareAndStoreFile(
  ctx: ServiceContext,
  input: NewFileUpload,
  transfer: FileUploadContext,
  mechanism: UploadMechanism,
  session: PublishingSessionRecord,
  links: Links,
): Promise<Reply<FileUploadSessionResponse>> {
  const { config, store } = ctx;
  const { filename } = input;
  const map = await mechanism.instructions(transfer);
  const drop = async () => {
    try {
      await mechanism.cancel?.(transfer);
    } catch (err) {
      ctx.logger.warn({ err, file: input.id }, 'mechanism cancel failed');
    }
  };
  if (map.identifier !== mechanism.identifier) {
    await drop();
    throw new Error(`instructions of ${mechanism.identifier} carry identifier ${String(map.identifier)}`);
  }
  const limits = {
    maxFiles: config.limits.maxFilesPerSession,
    maxFileSessions: config.limits.maxFileSessionsPerSession,
    maxStagedBytes: config.limits.maxStagedBytesPerPrincipal,
  };
  // Stored origin-free: whoever reads this file upload session later gets their own trusted origin.
  const result = await store
    .createFile({ ...input, instructions: storableInstructions(map, links.origin) }, limits)
    .catch(async (err: unknown) => {
      await drop();
      throw err;
    });
  if (result.kind !== 'created') await drop();
  switch (result.kind) {
    case 'exists':
      // PEP "Replacing a Partially or Fully Uploaded File": in-progress files cannot be replaced.
      throw new ProblemError(
        'file-exists',
        `${filename} is already ${result.file.status} in this session; delete it (DELETE its file upload session) before uploading it again.`,
        {
          headers: { Location: links.file(result.file.id) },
          extensions: { state: result.file.status },
        },
      );
    case 'same-distribution':
      throw sameDistribution(filename, result.file, links);
    case 'published':
      throw await refusePublished(store, session.project, filename, result.filename);
    case 'over-quota':
      throw overQuota(input.size, result.quota, result.used);
    case 'session-state':
      publishingSessionMachine.next(result.status, 'file-changed');
      throw new ProblemError('session-not-editable', `The session is ${result.status}.`);
    case 'too-many-files':
      throw new ProblemError(
        'limit-exceeded',
        result.canceledIncluded
          ? `A publishing session may create at most ${result.limit} file upload sessions, deleted and replaced ones included; publish or cancel this session and start a new one.`
          : `A publishing session may hold at most ${result.limit} files.`,
      );
    case 'created':
      break;
  }
  if (result.replaced) await purgeFile(ctx, result.replaced, session);
  return {
    status: 202,
    body: fileBody(result.file, links, config),
    headers: { Location: links.file(result.file.id), 'Retry-After': String(config.retryAfter) },
  };
}

/** `GET links.file-upload-session`: PEP 694 "File Upload Session Status", with bytes received while pending. */
export async function fileStatus(ctx: ServiceContext, call: CallContext, fileId: string): Promise<Reply<FileUploadSessionResponse>> {
  const { file, session } = await authorizedFile(ctx, call, fileId, { canceledIsGone: false });
  const links = linksFor(ctx, call);
  const body = fileBody(file, links, ctx.config);
  const mechanism = ctx.mechanismById.get(file.mechanism);
  if (file.status === 'pending' && mechanism) {
    const transfer = await mechanism.status(transferContext(file, session, links));
    body.meta = { ...body.meta, [`_${ctx.config.indexId}`]: { 'bytes-received': transfer.bytesReceived } };
  }
  const busy = IN_FLIGHT_FILE_STATES.includes(file.status);
  return { status: 200, body, headers: busy ? { 'Retry-After': String(ctx.config.retryAfter) } : {} };
}

/** `POST links.extend` of a file: PEP 694 "File Upload Session Extension". */
export async function extendFile(
  ctx: ServiceContext,
  call: CallContext,
  fileId: string,
  readBody: BodyReader<ExtendRequest>,
): Promise<Reply<FileUploadSessionResponse>> {
  const { file, session } = await authorizedFile(ctx, call, fileId, { canceledIsGone: true });
  const extendFor = (await readBody())['extend-for'];
  publishingSessionMachine.next(session.status, 'file-changed');
  // A file upload session cannot outlive its publishing session.
  const wanted = Math.min(ctx.clock.now().getTime() + extendFor * 1000, session.expiresAt.getTime());
  const expiresAt = new Date(Math.max(file.expiresAt.getTime(), wanted));
  const updated = (await ctx.store.updateFile(file.id, LIVE_FILE_STATES, { expiresAt })) ?? file;
  return { status: 200, body: fileBody(updated, linksFor(ctx, call), ctx.config) };
}

/**
 * `DELETE links.file-upload-session`: PEP 694 "File Upload Session Cancellation" and deletion:
 * the file's `cancel` event, a `file-changed` of its session.
 */
export async function deleteFile(ctx: ServiceContext, call: CallContext, fileId: string): Promise<Reply<never>> {
  const { file, session } = await authorizedFile(ctx, call, fileId, { canceledIsGone: true });
  publishingSessionMachine.next(session.status, 'file-changed');
  fileUploadMachine.next(file.status, 'cancel'); // 409 while processing
  const updated = await ctx.store.updateFile(
    file.id,
    fileUploadMachine.sourcesOf('cancel'),
    { status: fileUploadMachine.targetOf('cancel') },
    publishingSessionMachine.sourcesOf('file-changed'),
  );
  if (!updated) {
    const now = await loadFile(ctx, fileId, { canceledIsGone: true });
    publishingSessionMachine.next(now.session.status, 'file-changed');
    fileUploadMachine.next(now.file.status, 'cancel');
    throw new ProblemError('invalid-transition', 'The file changed while it was being deleted; try again.');
  }
  await purgeFile(ctx, file, session);
  return { status: 204 };
}
