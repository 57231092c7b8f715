/**
 * Who may do what, on every call (PEP 694 "Authentication and Authorization"): authentication,
 * the upload permission on a session's project, and finding the session or file a URL names with
 * the 404-before-403 rules. It needs only the auth ports and the store's two getters, so the host
 * builds the `MechanismHost` from this part alone (see `authorizeTransfer`).
 */
import {
  fileUploadMachine,
  ProblemError,
  publishingSessionMachine,
  type Authenticator,
  type Authorizer,
  type FileUploadContext,
  type FileUploadRecord,
  type Principal,
  type PublishingSessionRecord,
  type UploadStore,
} from '@pep694/core';
import type { ServerConfig } from '../config.js';
import type { CallContext } from './context.js';
import { Links } from './links.js';
import { sameSecret } from './secrets.js';
import { transferContext } from './transfer.js';

export interface AccessDeps {
  readonly config: Pick<ServerConfig, 'rootPath' | 'index'>;
  readonly store: Pick<UploadStore, 'getSession' | 'getFile'>;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
}

/** The request's principal; 401 with `WWW-Authenticate` when credentials are missing or invalid. */
export async function authenticate(deps: Pick<AccessDeps, 'authenticator'>, authorization: string | undefined): Promise<Principal> {
  const principal = await deps.authenticator.authenticate(authorization);
  if (principal) return principal;
  throw new ProblemError(
    'unauthenticated',
    authorization ? 'The credentials are not valid.' : 'This endpoint requires credentials in the Authorization header.',
    { headers: { 'WWW-Authenticate': deps.authenticator.challenge } },
  );
}

/**
 * Upload permission on the session's project, now. For a first release (the session reserves the
 * name) the creator stays authorized for the session's lifetime, as the PEP's "Create a
 * Publishing Session" recommends.
 */
export async function authorize(
  deps: Pick<AccessDeps, 'authorizer'>,
  principal: Principal,
  session: PublishingSessionRecord,
): Promise<void> {
  if (await deps.authorizer.mayUpload(principal, session.project)) return;
  if (session.reservesName && session.createdBy === principal.id) return;
  throw forbidden(principal, session.project);
}

export function forbidden(principal: Principal, project: string, registration = false): ProblemError {
  return new ProblemError(
    'forbidden',
    registration ? `${principal.id} may not register the new project name ${project}.` : `${principal.id} may not upload to ${project}.`,
  );
}

/**
 * What "gone" means for a URL: a canceled session's action URLs and its files' URLs answer 404
 * (PEP 694 "Publishing Session Cancellation"), while the status URLs keep reporting `canceled`.
 */
export interface Lookup {
  readonly canceledIsGone: boolean;
}

export async function loadSession(deps: Pick<AccessDeps, 'store'>, id: string, opts: Lookup): Promise<PublishingSessionRecord> {
  const session = await deps.store.getSession(id);
  if (!session || (opts.canceledIsGone && session.status === 'canceled')) {
    throw new ProblemError('not-found', 'No such publishing session (it may have been canceled or expired).');
  }
  return session;
}

export async function loadFile(
  deps: Pick<AccessDeps, 'store'>,
  id: string,
  opts: Lookup,
): Promise<{ file: FileUploadRecord; session: PublishingSessionRecord }> {
  const file = await deps.store.getFile(id);
  const session = file && (await deps.store.getSession(file.sessionId));
  if (!file || !session || (opts.canceledIsGone && (session.status === 'canceled' || file.status === 'canceled'))) {
    throw new ProblemError('not-found', 'No such file upload session (it may have been canceled or expired).');
  }
  return { file, session };
}

/** The session `id` names, if the caller may act on it: 404 first, then 403. */
export async function authorizedSession(deps: AccessDeps, call: CallContext, id: string, opts: Lookup): Promise<PublishingSessionRecord> {
  const session = await loadSession(deps, id, opts);
  await authorize(deps, call.principal, session);
  return session;
}

/** The file `id` names and its session, if the caller may act on them: 404 first, then 403. */
export async function authorizedFile(
  deps: AccessDeps,
  call: CallContext,
  id: string,
  opts: Lookup,
): Promise<{ file: FileUploadRecord; session: PublishingSessionRecord }> {
  const found = await loadFile(deps, id, opts);
  await authorize(deps, call.principal, found.session);
  return found;
}

/**
 * `{root}stage/{token}/files/{file}` (the token form of `files[].link`): the file id, when the file
 * belongs to the session holding that stage token; 404 otherwise or when previews are off.
 */
export async function stagedFileId(deps: Pick<AccessDeps, 'store' | 'config'>, token: string, fileId: string): Promise<string> {
  const file = deps.config.index ? await deps.store.getFile(fileId) : undefined;
  const session = file && (await deps.store.getSession(file.sessionId));
  if (!file || !session || session.stageToken === null || !sameSecret(session.stageToken, token)) {
    throw new ProblemError('not-found', 'No such file upload session (it may have been canceled or expired).');
  }
  return file.id;
}

/** What a mechanism request carries that access needs, read off the request by `http/mechanism-host.ts`. */
export interface TransferRequest {
  /** The `Authorization` header, as sent. */
  readonly authorization: string | undefined;
  /** The trusted origin the request was made to (the mechanism's links are built on it). */
  readonly origin: string;
}

/**
 * `MechanismHost.authorizeTransfer` without HTTP: 401, then 404 for an unknown or purged file
 * upload session or one negotiated for another mechanism, then 403, then 409 unless the session
 * accepts file changes and the file accepts data.
 */
export async function authorizeTransfer(
  deps: AccessDeps,
  request: TransferRequest,
  identifier: string,
  fileId: string,
): Promise<FileUploadContext> {
  const principal = await authenticate(deps, request.authorization);
  const found = await deps.store.getFile(fileId);
  const session = found && (await deps.store.getSession(found.sessionId));
  if (!found || !session || found.mechanism !== identifier || session.status === 'canceled' || found.status === 'canceled') {
    throw new ProblemError('not-found', 'No such file upload session for this mechanism.');
  }
  await authorize(deps, principal, session);
  publishingSessionMachine.next(session.status, 'file-changed');
  fileUploadMachine.next(found.status, 'transfer');
  return transferContext(found, session, new Links(request.origin, deps.config.rootPath));
}
