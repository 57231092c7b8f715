/**
 * The JSON bodies of the session API's answers, as pure functions of what is stored: the
 * publishing session (PEP 694 "Publishing Session Status") and the file upload session ("File
 * Upload Session Status"). Links are built on the caller's trusted origin.
 */
import {
  API_VERSION,
  formatExpiresAt,
  type FileUploadSummary,
  type FileUploadSessionResponse,
  type PublishingSessionRecord,
  type PublishingSessionResponse,
  type SessionFileStatus,
} from '@pep694/core';
import type { ServerConfig } from '../config.js';
import type { Links } from './links.js';
import { resolveInstructions } from './stored-instructions.js';

/**
 * `files` are the session's files (canceled ones are left out of the mapping, as PEP 694 "File
 * Upload Session States" requires); `mechanisms` the identifiers, in the operator's order.
 */
export function sessionBody(
  session: PublishingSessionRecord,
  files: readonly FileUploadSummary[],
  links: Links,
  config: Pick<ServerConfig, 'index' | 'indexId'>,
  mechanisms: readonly string[],
): PublishingSessionResponse {
  // PEP 694 "Publishing Session Token": with previews on, the token, the stage URL, and file links under the token.
  const index = config.index;
  const token = index ? session.stageToken : null;
  const body: PublishingSessionResponse = {
    meta: { 'api-version': API_VERSION },
    links: {
      session: links.session(session.id),
      upload: links.upload(session.id),
      publish: links.publish(session.id),
      extend: links.extend(session.id),
    },
    mechanisms: [...mechanisms],
    'expires-at': formatExpiresAt(session.expiresAt),
    status: session.status,
    files: Object.fromEntries(
      files
        .filter((f) => f.status !== 'canceled')
        .map((f) => [
          f.filename,
          {
            status: f.status as SessionFileStatus,
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
      const published = files
        .filter((f) => f.status === 'completed')
        .map((f) => [f.filename, links.publishedFile(index.simplePath, session.project, f.filename)]);
      body.meta = { ...body.meta, [`_${config.indexId}`]: { 'published-files': Object.fromEntries(published) } };
    }
  }
  return body;
}

export function fileBody(file: FileUploadSummary, links: Links, config: Pick<ServerConfig, 'rootPath'>): FileUploadSessionResponse {
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
    // Stored origin-free (see stored-instructions.ts): this caller's trusted origin goes back in.
    mechanism: file.instructions
      ? resolveInstructions(file.instructions, links.origin, `${config.rootPath}mechanisms/${file.mechanism}`)
      : { identifier: file.mechanism },
  };
  if (file.notices.length > 0) body.notices = [...file.notices];
  return body;
}
