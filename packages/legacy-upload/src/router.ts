/**
 * `POST {legacyPath}`: the legacy upload API (PEP 694 "Legacy API"; Warehouse's
 * `forklift/legacy.py`), in the same namespace and under the same rules as Upload 2.0. One request:
 *  1. authenticate (the host's Authenticator: `__token__` and an API token as HTTP Basic);
 *  2. read the fields before the file part, and check them as a file upload session's are checked:
 *     the name, the version, a normalized file name of that release, upload (or registration)
 *     permission on the project, and whether the file's identity is already published (409);
 *  3. stream the file part into the blob store's staging key, hashed in the same pass;
 *  4. verify the declared digests, the PEP 740 `attestations` field (core's `acceptAttestations`,
 *     the function every mechanism uses), and the artifact (the host's file validators, as at
 *     completion);
 *  5. move the bytes to their permanent key and publish through `UploadStore.publishFile`, the
 *     store's one step that applies the name reservation, the new-name limit and identity
 *     conflicts, so it races safely with any PEP 694 publish.
 * Any refusal is answered the way legacy clients read it (answer.ts), after the body is out of the
 * way; nothing staged survives a refusal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  acceptAttestations,
  DEFAULT_IDLE_TIMEOUT,
  digestsMatch,
  distributionIdentity,
  parseMediaType,
  ProblemError,
  releaseKey,
  type AcceptedAttestations,
  type AttestationVerifier,
  type Authenticator,
  type Authorizer,
  type BlobStore,
  type Clock,
  type FileValidator,
  type HashName,
  type IndexReadStore,
  type NameRegistrationPolicy,
  type Principal,
  type UploadStore,
} from '@pep694/core';
import { answerAfterBody, awaitsInvitation, contentLength, idleProblem, inviteBody, watchIdle } from '@pep694/core/node-http';
import { Router } from 'express';
import { sendRefusal, sendUploaded } from './answer.js';
import { checkAction, readRelease, type FormFields, type LegacyRelease } from './fields.js';
import { FORM_OVERHEAD, LegacyFormReceiver, type ContentTarget, type ReceivedForm } from './form.js';

/** Most bytes of all form fields of one upload, unless the host says otherwise: descriptions can be long. */
const DEFAULT_MAX_FIELD_BYTES = 4 * 1024 * 1024;

export interface LegacyUploadOptions {
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly names: NameRegistrationPolicy;
  readonly store: Pick<UploadStore, 'isPublishedProject' | 'findPublishedIdentity' | 'publishFile'> &
    Pick<IndexReadStore, 'getPublishedFile'>;
  readonly blobs: BlobStore;
  /** Run on the staged bytes before publishing, as at a PEP 694 completion. */
  readonly validators: readonly FileValidator[];
  readonly clock: Clock;
  /** The host's blob layout: where a file's bytes are staged, and where verified bytes live. */
  readonly keys: { staging(fileId: string): string; file(fileId: string): string };
  /** Unguessable ids for the session and file rows the store records. */
  newId(): string;
  readonly limits: {
    readonly maxFileSize: number;
    readonly maxNewProjectsPerWindow: number;
    /** Seconds. */
    readonly newProjectsWindow: number;
    /** Most bytes of all form fields together; default 4 MiB (descriptions can be long). */
    readonly maxFieldBytes?: number;
    /** Most form fields; default 1000. */
    readonly maxFields?: number;
    /** Stop an upload when no bytes arrive for this many ms; default 120 s. */
    readonly idleTimeout?: number;
  };
  /**
   * File ids whose bytes are staged but not yet recorded: the host's sweep of orphaned blobs must
   * spare them (the server passes its `creating` set).
   */
  readonly inFlight?: Set<string>;
  /**
   * PEP 740: verifies the `attestations` field (the host's verifier, as mechanisms get it on
   * `MechanismHost.attestationVerifier`). Absent: attestations are shape-checked and stored, never
   * served as provenance.
   */
  readonly attestationVerifier?: AttestationVerifier;
  /** A page for users, named in the 403 messages ("See … for more information."). */
  readonly helpUrl?: string;
  /** `type` base of problem+json answers. */
  readonly typeBase?: string;
  /** Told of failures that are the server's fault (answered with a generic 500/507). */
  onError?(err: unknown): void;
}

/** The `mechanism` recorded on the file rows of legacy uploads. */
export const LEGACY_MECHANISM = 'legacy';

export function legacyUploadRouter(options: LegacyUploadOptions): Router {
  const router = Router();
  router.post('/', (req, res) => void handleUpload(options, req, res));
  router.all('/', (req, res) => {
    res.setHeader('Allow', 'POST');
    void refuseLegacy(options, req, res, new ProblemError('method-not-allowed', 'The legacy upload API takes POST (twine upload).'));
  });
  return router;
}

const see = (o: LegacyUploadOptions) => (o.helpUrl ? ` See ${o.helpUrl} for more information.` : '');

async function handleUpload(o: LegacyUploadOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const fileId = o.newId();
  const staged = o.keys.staging(fileId);
  const kept = o.keys.file(fileId);
  let receiver: LegacyFormReceiver | undefined;
  let published = false;
  try {
    const principal = await authenticate(o, req.headers.authorization);
    requireMultipart(req.headers['content-type']);
    // The limit a file upload session's declared size meets at creation, met here before a byte is read.
    const declared = contentLength(req);
    const maxBody = o.limits.maxFileSize + (o.limits.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES) + FORM_OVERHEAD;
    if (declared !== undefined && declared > maxBody) {
      throw new ProblemError(
        'payload-too-large',
        `The upload is ${declared} bytes; this index accepts files up to ${o.limits.maxFileSize} bytes (and the form around them); nothing was stored.`,
      );
    }
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    let release: LegacyRelease | undefined;
    const decide = async (fields: FormFields, filename: string | undefined): Promise<ContentTarget> => {
      checkAction(fields, query);
      release = readRelease(fields, filename);
      await authorize(o, principal, release.project);
      const holder = await o.store.findPublishedIdentity(release.project, distributionIdentity(release.filename));
      if (holder !== undefined) throw await alreadyExists(o, release, holder);
      o.inFlight?.add(fileId);
      // sha256 always (the index publishes it); md5 only when it is the one digest declared.
      const hashes: HashName[] = release.sha256 || !release.md5 ? ['sha256'] : ['sha256', 'md5'];
      return { stagingKey: staged, hashes };
    };
    inviteBody(req, res);
    receiver = new LegacyFormReceiver(
      req,
      o.blobs,
      {
        maxFileSize: o.limits.maxFileSize,
        maxFieldBytes: o.limits.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES,
        maxFields: o.limits.maxFields ?? 1000,
      },
      decide,
    );
    const idle = o.limits.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
    const r = receiver;
    const stopWatch = watchIdle(req, idle, (reason) => r.fail(idleProblem(reason, idle, 0, 'Upload the file again.')));
    let form: ReceivedForm;
    try {
      form = await receiver.run();
    } finally {
      stopWatch();
    }
    const accepted = release!;
    await publish(o, principal, accepted, form, fileId);
    published = true;
    sendUploaded(res, accepted.filename);
  } catch (err) {
    if (!published) {
      // Nothing partial: a refused upload leaves no bytes under either key.
      await Promise.all([o.blobs.delete(staged), o.blobs.delete(kept)]).catch((e: unknown) => o.onError?.(e));
    }
    await refuseLegacy(o, req, res, err, receiver?.bodyBytes ?? 0);
  } finally {
    o.inFlight?.delete(fileId);
  }
}

/** Steps 4 and 5: the digests, the attestations, the validators, then the store's one-step publish. */
async function publish(o: LegacyUploadOptions, principal: Principal, release: LegacyRelease, form: ReceivedForm, fileId: string) {
  const declared: Partial<Record<HashName, string>> = {
    ...(release.sha256 ? { sha256: release.sha256 } : {}),
    ...(release.md5 && !release.sha256 ? { md5: release.md5 } : {}),
  };
  if (digestsMatch(declared, form.digests).length > 0) {
    throw new ProblemError(
      'hash-mismatch',
      'The digest supplied does not match a digest calculated from the uploaded file; nothing was stored.',
    );
  }
  const sha256 = form.digests.sha256!;
  const attestations = await readAttestations(o, form.fields, release, sha256);
  let coreMetadata: Uint8Array | null = null;
  let requiresPython: string | null = null;
  for (const validator of o.validators) {
    const result = await validator.validate({
      project: release.project,
      version: release.version,
      filename: release.filename,
      size: form.size,
      read: (range) => o.blobs.read(form.stagingKey, range),
    });
    if (!result.ok) throw new ProblemError('invalid-artifact', result.detail, { errors: [...result.errors] });
    coreMetadata = result.coreMetadata ?? coreMetadata;
    requiresPython = result.requiresPython ?? requiresPython;
  }
  const blobKey = o.keys.file(fileId);
  await o.blobs.move(form.stagingKey, blobKey);
  const at = o.clock.now();
  const result = await o.store.publishFile(
    {
      sessionId: o.newId(),
      fileId,
      project: release.project,
      displayName: release.displayName,
      version: release.version,
      releaseKey: releaseKey(release.version),
      filename: release.filename,
      identity: distributionIdentity(release.filename),
      size: form.size,
      hashes: { sha256 },
      blobKey,
      attestations,
      coreMetadata,
      requiresPython,
      mechanism: LEGACY_MECHANISM,
      createdBy: principal.id,
      at,
    },
    { newNames: { limit: o.limits.maxNewProjectsPerWindow, windowMs: o.limits.newProjectsWindow * 1000 } },
  );
  switch (result.kind) {
    case 'published':
      return;
    case 'conflict':
      throw await alreadyExists(o, release, result.filename, sha256);
    case 'name-reserved':
      throw new ProblemError(
        'name-unavailable',
        `The project name '${release.project}' is reserved by another uploader's first release, which is not published yet; nothing was stored.`,
      );
    case 'too-many-new-names': {
      const retryAfter = Math.max(1, Math.ceil((result.retryAt.getTime() - at.getTime()) / 1000));
      throw new ProblemError(
        'rate-limited',
        `Too many new projects created: you may register at most ${result.limit} new project names per ${o.limits.newProjectsWindow} s. Retry after ${retryAfter} s.`,
        { headers: { 'Retry-After': String(retryAfter) } },
      );
    }
  }
}

/**
 * The optional PEP 740 `attestations` field: a JSON array, checked and verified by core's
 * `acceptAttestations`, the one entry point every mechanism uses (with the host's verifier).
 */
async function readAttestations(
  o: LegacyUploadOptions,
  fields: FormFields,
  release: LegacyRelease,
  sha256: string,
): Promise<AcceptedAttestations | null> {
  const filename = release.filename;
  const values = fields.get('attestations');
  if (values === undefined) return null;
  if (values.length > 1)
    throw new ProblemError('invalid-attestations', 'The attestations field was sent more than once; send one JSON array.');
  const value = values[0]!;
  if (value.trim() === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ProblemError(
      'invalid-attestations',
      'Invalid attestations supplied during upload: the field is not JSON (a JSON array of PEP 740 attestation objects).',
    );
  }
  try {
    return await acceptAttestations(parsed, { project: release.project, filename, hashes: { sha256 } }, o.attestationVerifier);
  } catch (err) {
    // Warehouse's prefix on every attestation refusal, verifier's too: twine shows only the reason
    // phrase, and it should say that the attestations (not the file) were refused, then which check.
    if (ProblemError.is(err) && ATTESTATION_REFUSALS.has(err.code)) {
      throw new ProblemError(err.code, `Invalid attestations supplied during upload: ${err.detail}`, {
        errors: [...err.errors],
        extensions: err.extensions,
      });
    }
    throw err;
  }
}

/** The codes `acceptAttestations` refuses with: shape and statement, then the verifier's checks. */
const ATTESTATION_REFUSALS: ReadonlySet<string> = new Set([
  'invalid-attestations',
  'attestation-unverified',
  'attestation-untrusted-publisher',
]);

/**
 * 401 without credentials (with the host's challenge, so curl and browsers can ask), 403 with
 * Warehouse's message for credentials that are not valid: that is what twine users know.
 */
async function authenticate(o: LegacyUploadOptions, authorization: string | undefined): Promise<Principal> {
  if (authorization === undefined || authorization.trim() === '') {
    throw new ProblemError(
      'unauthenticated',
      'This endpoint requires credentials: upload with username __token__ and an API token as the password.',
      {
        headers: { 'WWW-Authenticate': o.authenticator.challenge },
      },
    );
  }
  const principal = await o.authenticator.authenticate(authorization);
  if (!principal) throw new ProblemError('forbidden', `Invalid or non-existent authentication information.${see(o)}`);
  return principal;
}

/** The same rule as creating a publishing session: upload permission, or for a new name registration permission. */
async function authorize(o: LegacyUploadOptions, principal: Principal, project: string): Promise<void> {
  const published = await o.store.isPublishedProject(project);
  if (await o.authorizer.mayUpload(principal, project)) return;
  if (!published && (await o.names.mayRegister(principal, project))) return;
  throw new ProblemError(
    'forbidden',
    published
      ? `The user '${principal.id}' isn't allowed to upload to project '${project}'.${see(o)}`
      : `The user '${principal.id}' isn't allowed to register the new project name '${project}'.${see(o)}`,
  );
}

/**
 * 409 `file-already-published`: "already exist" in the reason and a 409 status, both of which
 * `twine upload --skip-existing` recognises, so a re-run skips what is there. The message says
 * whether the published file is identical to this one (by the declared or computed sha256).
 */
async function alreadyExists(
  o: LegacyUploadOptions,
  release: LegacyRelease,
  holder: string,
  sha256 = release.sha256,
): Promise<ProblemError> {
  const published = await o.store.getPublishedFile(release.project, holder);
  const extensions: Record<string, string> = { 'published-filename': holder };
  if (!published) {
    return new ProblemError(
      'file-already-published',
      `File already exists ('${holder}'): it is being published by another upload right now; published files are immutable.`,
      { extensions },
    );
  }
  const hash = published.hashes.sha256 ?? '';
  // As the Upload 2.0 answer says it: a client re-running an upload skips the same file.
  if (hash) extensions['published-sha256'] = hash;
  if (holder !== release.filename) {
    return new ProblemError(
      'file-already-published',
      `File already exists: '${release.filename}' is the same distribution as '${holder}' (sha256 '${hash}'), which is published; use a new version.`,
      { extensions },
    );
  }
  const same = sha256 !== undefined && sha256 === hash;
  return new ProblemError(
    'file-already-published',
    same
      ? `File already exists ('${holder}', with sha256 hash '${hash}'): the same file is already published.`
      : `File already exists ('${holder}', with sha256 hash '${hash}'), with other contents; published files are immutable: use a new version.`,
    { extensions },
  );
}

function requireMultipart(header: string | undefined): void {
  const m = header === undefined ? undefined : parseMediaType(header);
  // PEP 694 "Legacy API Fallback": a client that tries Upload 2.0 first falls back to the legacy
  // protocol on 404 or 406. Given this URL (the one twine users know), its Upload 2.0 request gets
  // the 406 that tells it so, rather than a 415 it would take for a failure.
  if (m?.type === 'application' && m.subtype.startsWith('vnd.pypi.upload.')) {
    throw new ProblemError(
      'not-acceptable',
      "This is the legacy upload API: it takes a multipart/form-data body (twine upload), not Upload 2.0 requests; use the index's Upload 2.0 root for those.",
    );
  }
  if (m?.type !== 'multipart' || m.subtype !== 'form-data' || !m.params['boundary']) {
    throw new ProblemError(
      'unsupported-media-type',
      'The legacy upload API takes a multipart/form-data body with the file in a part named content (twine upload sends this).',
    );
  }
}

/**
 * Answers a refusal once the body is out of the way (core's `answerAfterBody`: read and discard a
 * small rest, or answer with `Connection: close`), or at once to a client still waiting for a
 * `100 Continue` it was never sent.
 */
async function refuseLegacy(o: LegacyUploadOptions, req: IncomingMessage, res: ServerResponse, err: unknown, consumed = 0): Promise<void> {
  if (res.headersSent || res.destroyed) return;
  const answer = () => {
    const problem = sendRefusal(req, res, err, o.typeBase);
    if (problem.status >= 500) o.onError?.(err);
  };
  if (awaitsInvitation(req)) {
    res.setHeader('Connection', 'close');
    answer();
    return;
  }
  answerAfterBody(req, res, answer, consumed);
  await Promise.resolve();
}
