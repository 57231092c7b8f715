/**
 * Completing a file upload session (walk step 4): the mechanism says whether every byte is there,
 * then the host checks the size and every declared hash, runs the file validators and moves the
 * bytes to their permanent key: `completed` (201), or `processing` (202) with the same work done in
 * the background, or `error` with the reason in the file's notices. The states each store call
 * expects, and the states it writes, are the events' of the file upload session machine.
 */
import {
  createHashers,
  digestsMatch,
  fileUploadMachine,
  ProblemError,
  publishingSessionMachine,
  type CompleteFileUploadRequest,
  type CompletionOutcome,
  type FileUploadRecord,
  type FileUploadSessionResponse,
  type HashName,
  type PublishingSessionRecord,
} from '@pep694/core';
import { authorizedFile } from './access.js';
import { fileBody } from './bodies.js';
import { linksFor, type BodyReader, type CallContext, type Reply, type ServiceContext } from './context.js';
import { fileKey, stagingKey, transferContext } from './transfer.js';

type Received = Extract<CompletionOutcome, { kind: 'received' }>;
/** The session states in which a file may change (and so be completed): the session's `file-changed` event. */
const sessionAllowsFileChange = () => publishingSessionMachine.sourcesOf('file-changed');

/** `POST links.complete`: PEP 694 "Complete a File Upload Session". */
export async function completeFile(
  ctx: ServiceContext,
  call: CallContext,
  fileId: string,
  readBody: BodyReader<CompleteFileUploadRequest>,
): Promise<Reply<FileUploadSessionResponse>> {
  const { file, session } = await authorizedFile(ctx, call, fileId, { canceledIsGone: true });
  await readBody();
  publishingSessionMachine.next(session.status, 'file-changed');
  if (!fileUploadMachine.allows(file.status, 'complete-immediate')) fileUploadMachine.next(file.status, 'complete-immediate');
  const links = linksFor(ctx, call);
  const mechanism = ctx.mechanismById.get(file.mechanism);
  if (!mechanism)
    throw await fail(
      ctx,
      file,
      new ProblemError('mechanism-unsupported', `The mechanism ${file.mechanism} is no longer offered by this index.`),
    );
  const headers = { Location: links.file(file.id) };

  await reclaimMoved(ctx, file.id);
  const outcome = await mechanism.completion(transferContext(file, session, links));
  if (outcome.kind === 'incomplete') {
    throw await fail(
      ctx,
      file,
      new ProblemError('upload-incomplete', outcome.detail, { extensions: { expected: file.size, received: outcome.received } }),
    );
  }
  if (outcome.size !== file.size) {
    throw await fail(
      ctx,
      file,
      new ProblemError('size-mismatch', `Expected ${file.size} bytes (the declared size), received ${outcome.size}.`, {
        extensions: { expected: file.size, received: outcome.size },
      }),
    );
  }
  const missing = (Object.keys(file.hashes) as HashName[]).filter((h) => outcome.digests[h] === undefined);
  if (outcome.defer || (missing.length > 0 && file.size > ctx.config.limits.deferVerificationAbove)) {
    // The attestations go into the row with `processing`: if a crash interrupts the deferred
    // work, `recover` has nothing else to take them from (the mechanism's copy may be swept).
    const attestations = outcome.attestations ? [...outcome.attestations] : null;
    const processing = await ctx.store.updateFile(
      file.id,
      fileUploadMachine.sourcesOf('complete-deferred'),
      { status: fileUploadMachine.targetOf('complete-deferred'), attestations },
      sessionAllowsFileChange(),
    );
    if (!processing) throw await raceLost(ctx, fileId);
    // Under the file's lease: a recovery pass (here or on another node) leaves it alone meanwhile.
    ctx.background.run('deferred verification', () =>
      ctx.leases.run(verificationLease(file.id), () => finishProcessing(ctx, processing, session, outcome)),
    );
    return {
      status: 202,
      body: fileBody(processing, links, ctx.config),
      headers: { ...headers, 'Retry-After': String(ctx.config.retryAfter) },
    };
  }
  let completed: FileUploadRecord;
  try {
    completed = await verifyAndAccept(ctx, file, session, outcome, 'complete-immediate');
  } catch (err) {
    if (ProblemError.is(err) && err.code === 'invalid-transition') throw err;
    // A DELETE or cancel that raced this completion removed the bytes under us: not a fault.
    if ((await ctx.store.getFile(file.id))?.status !== 'pending') throw await raceLost(ctx, file.id);
    throw await fail(ctx, file, err, 'complete-failed');
  }
  return { status: 201, body: fileBody(completed, links, ctx.config), headers };
}

/** The lease key of a file's deferred verification (see `WorkLeases`). */
export const verificationLease = (fileId: string) => `verify:${fileId}`;

/** The deferred work of a file in `processing`: `processing-succeeded`, or `processing-failed`. */
async function finishProcessing(
  ctx: ServiceContext,
  file: FileUploadRecord,
  session: PublishingSessionRecord,
  outcome: Received,
): Promise<void> {
  try {
    await verifyAndAccept(ctx, file, session, outcome, 'processing-succeeded');
  } catch (err) {
    await fail(ctx, file, err, 'processing-failed');
  }
}

/**
 * Crash recovery of a file left in `processing`: its staged bytes are verified again (the
 * mechanism's digests died with the process); its attestations were recorded with `processing`.
 */
export async function resumeProcessing(ctx: ServiceContext, file: FileUploadRecord, session: PublishingSessionRecord): Promise<void> {
  try {
    await reclaimMoved(ctx, file.id);
    const attestations = file.attestations ? { attestations: file.attestations } : {};
    await verifyAndAccept(ctx, file, session, { kind: 'received', size: file.size, digests: {}, ...attestations }, 'processing-succeeded');
  } catch (err) {
    await fail(ctx, file, err, 'processing-failed');
  }
}

/**
 * Checks every declared hash (computing what the mechanism did not, in one read of the staged
 * bytes), runs the validators, moves the bytes to their permanent key and marks the file
 * completed (`event`). Throws a ProblemError naming what failed.
 */
async function verifyAndAccept(
  ctx: ServiceContext,
  file: FileUploadRecord,
  session: PublishingSessionRecord,
  outcome: Received,
  event: 'complete-immediate' | 'processing-succeeded',
): Promise<FileUploadRecord> {
  const { blobs, store } = ctx;
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
    throw new ProblemError(
      'hash-mismatch',
      `The uploaded bytes do not match the declared ${wrong.join(', ')} digest${wrong.length > 1 ? 's' : ''}.`,
      {
        errors: wrong.map((h) => ({ source: `/hashes/${h}`, message: `declared ${file.hashes[h]}, received ${digests[h]}` })),
      },
    );
  }
  let coreMetadata: Uint8Array | null = null;
  let requiresPython: string | null = null;
  for (const validator of ctx.validators) {
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
    fileUploadMachine.sourcesOf(event),
    {
      status: fileUploadMachine.targetOf(event),
      blobKey: key,
      attestations: outcome.attestations ? [...outcome.attestations] : null,
      coreMetadata,
      requiresPython,
    },
    sessionAllowsFileChange(),
  );
  if (!completed) {
    // Deleted or canceled meanwhile (DELETE raced completion): its bytes must not linger.
    await blobs.delete(key);
    throw await raceLost(ctx, file.id);
  }
  return completed;
}

/**
 * A completion killed after moving the verified bytes to their permanent key but before
 * recording them leaves them there with the file still pending or processing (the reaper keeps
 * them): they go back to staging, where the retried completion looks for them.
 */
async function reclaimMoved(ctx: Pick<ServiceContext, 'blobs'>, fileId: string): Promise<void> {
  const { blobs } = ctx;
  if ((await blobs.size(stagingKey(fileId))) !== undefined || (await blobs.size(fileKey(fileId))) === undefined) return;
  await blobs.move(fileKey(fileId), stagingKey(fileId));
}

/**
 * Moves the file to error (`event`) with the reason in its notices, purges its staged bytes, and
 * returns the problem for the caller to throw.
 */
async function fail(
  ctx: ServiceContext,
  file: FileUploadRecord,
  err: unknown,
  event: 'complete-failed' | 'processing-failed' = 'complete-failed',
): Promise<unknown> {
  if (!ProblemError.is(err) || err.status >= 500) ctx.logger.error({ err }, 'completion failed');
  const reason = ProblemError.is(err) && err.status < 500 ? err.detail : 'The file could not be verified because of a server error.';
  await ctx.store.updateFile(file.id, fileUploadMachine.sourcesOf(event), {
    status: fileUploadMachine.targetOf(event),
    notices: [...file.notices, reason],
  });
  await ctx.blobs.delete(stagingKey(file.id));
  return err;
}

async function raceLost(ctx: ServiceContext, fileId: string): Promise<ProblemError> {
  const now = await ctx.store.getFile(fileId);
  return new ProblemError('invalid-transition', `The file upload session changed meanwhile; it is now ${now?.status ?? 'gone'}.`, {
    extensions: { state: now?.status },
  });
}
