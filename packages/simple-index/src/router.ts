/**
 * Express routers for the Simple Repository API (PEP 503 + PEP 691 + PEP 700 + PEP 658/714):
 *
 *   {base}                       project list                       (HTML or JSON by Accept)
 *   {base}{project}/             project page: one link per file     (HTML or JSON by Accept)
 *   {base}{project}/{filename}   the file (ranges, HEAD, ETag)
 *   {base}{project}/{filename}.metadata   its core metadata (PEP 658), when it has some
 *
 * `publishedIndexRouter` serves the published namespace (mount it at e.g. `/simple/`);
 * `stagePreviewRouter` serves, under `{mount}{session-token}/`, the same layout for one
 * publishing session's completed files (PEP 694 "Staged Previews"), without credentials.
 *
 * Errors are passed to `next` as `ProblemError`s; the host's error handler renders them as RFC 9457
 * problem+json.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { isValidProjectName, normalizeName, ProblemError, type BlobStore, type Clock } from '@pep694/core';
import { contentTypeFor, matchesEtag, sendBody } from './download.js';
import { negotiateSimpleType, SIMPLE_V1_JSON, type SimpleType } from './negotiate.js';
import { primaryHash, projectDetailHtml, projectDetailJson, projectListHtml, projectListJson, sha256Hex } from './render.js';
import { publishedView, stageView, versionsOf, type IndexStore, type RepositoryView } from './view.js';

export interface SimpleIndexOptions {
  readonly store: IndexStore;
  readonly blobs: Pick<BlobStore, 'read'>;
  /** For stage expiry; default: the system clock. */
  readonly clock?: Clock;
}

/** Cache-Control by kind: published files never change; stages are capability URLs, never stored. */
const CACHE = {
  published: { page: 'no-cache', file: 'public, max-age=31536000, immutable' },
  stage: { page: 'no-store', file: 'no-store' },
} as const;

type ViewResolver = (req: Request) => Promise<RepositoryView | undefined>;
type NotFound = (what: string) => ProblemError;

const wrap =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch(next);
  };

/**
 * Whether the path the client asked for ends with "/". Only the path: an absolute-form request
 * target (`GET http://host/simple HTTP/1.1`, RFC 9112 §3.2.2) also carries an authority, which must
 * never reach a redirect.
 */
const endsWithSlash = (req: Request): boolean => {
  const target = req.originalUrl.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  return (target.split(/[?#]/)[0] ?? '').endsWith('/');
};

function methodNotAllowed(): RequestHandler {
  return (req, _res, next) =>
    next(new ProblemError('method-not-allowed', `${req.method} is not allowed here; the index is read-only (GET or HEAD).`, { headers: { Allow: 'GET, HEAD' } }));
}

function sendPage(req: Request, res: Response, view: RepositoryView, type: SimpleType, body: string | object): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const etag = `"${createHash('sha256').update(type).update('\0').update(text).digest('base64url')}"`;
  res.setHeader('Vary', 'Accept');
  res.setHeader('Cache-Control', CACHE[view.kind].page);
  res.setHeader('ETag', etag);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (matchesEtag(req.headers['if-none-match'], etag)) {
    res.status(304).end();
    return;
  }
  res.setHeader('Content-Type', type === SIMPLE_V1_JSON ? type : `${type}; charset=utf-8`);
  res.setHeader('Content-Length', String(Buffer.byteLength(text)));
  res.status(200).end(req.method === 'HEAD' ? undefined : text);
}

/** The repository layout over whatever view `resolve` gives for the request. */
function repositoryRouter(resolve: ViewResolver, blobs: Pick<BlobStore, 'read'>, notFound: NotFound): Router {
  const router = Router({ caseSensitive: true, strict: true, mergeParams: true });
  const view = async (req: Request): Promise<RepositoryView> => {
    const v = await resolve(req);
    if (!v) throw notFound('this repository');
    return v;
  };
  /** PEP 503: project URLs use the normalized name; others redirect (301) to it. */
  const project = (req: Request, res: Response, rest: string): string | undefined => {
    const raw = String(req.params['project']);
    const shown = JSON.stringify(raw.slice(0, 100));
    if (!isValidProjectName(raw)) throw notFound(`project ${shown}`);
    const normalized = normalizeName(raw);
    if (normalized === raw) return raw;
    res.redirect(301, `${req.baseUrl}/${encodeURIComponent(normalized)}/${rest}`);
    return undefined;
  };

  router
    .route('/')
    .get(
      wrap(async (req, res) => {
        const v = await view(req);
        // PEP 503: pages end with "/"; redirect the bare mount path.
        // Built from the mount path express matched, never from the request target as sent.
        if (!endsWithSlash(req)) return res.redirect(301, `${req.baseUrl}/`);
        const type = negotiateSimpleType(req.headers.accept, req.query['format']);
        const projects = await v.projects();
        sendPage(req, res, v, type, type === SIMPLE_V1_JSON ? projectListJson(projects) : projectListHtml(projects));
      }),
    )
    .all(methodNotAllowed());

  router
    .route('/:project')
    .get(
      wrap(async (req, res) => {
        await view(req); // an unknown stage is a 404, not a redirect
        const name = project(req, res, '');
        if (name !== undefined) res.redirect(301, `${req.baseUrl}/${encodeURIComponent(name)}/`);
      }),
    )
    .all(methodNotAllowed());

  router
    .route('/:project/')
    .get(
      wrap(async (req, res) => {
        const v = await view(req);
        const name = project(req, res, '');
        if (name === undefined) return;
        const type = negotiateSimpleType(req.headers.accept, req.query['format']);
        const files = await v.files(name);
        if (!files) throw notFound(`project ${name}`);
        sendPage(req, res, v, type, type === SIMPLE_V1_JSON ? projectDetailJson(name, files, versionsOf(files)) : projectDetailHtml(name, files));
      }),
    )
    .all(methodNotAllowed());

  router
    .route('/:project/:filename')
    .get(
      wrap(async (req, res) => {
        const v = await view(req);
        const filename = String(req.params['filename']);
        const name = project(req, res, encodeURIComponent(filename));
        if (name === undefined) return;
        const cacheControl = CACHE[v.kind].file;
        const file = await v.file(name, filename);
        if (file) {
          const h = primaryHash(file.hashes);
          return sendBody(req, res, {
            size: file.size,
            contentType: contentTypeFor(file.filename),
            etag: `"${h ? `${h.name}-${h.hex}` : file.blobKey}"`,
            ...(file.uploadTime ? { lastModified: file.uploadTime } : {}),
            cacheControl,
            open: (range) => blobs.read(file.blobKey, range),
          });
        }
        if (filename.endsWith('.metadata')) {
          const dist = await v.file(name, filename.slice(0, -'.metadata'.length));
          const meta = dist?.coreMetadata;
          if (meta) {
            const bytes = Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength);
            return sendBody(req, res, {
              size: bytes.length,
              contentType: contentTypeFor(filename),
              etag: `"sha256-${sha256Hex(bytes)}"`,
              ...(dist.uploadTime ? { lastModified: dist.uploadTime } : {}),
              cacheControl,
              open: async (range) => Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes]),
            });
          }
        }
        throw notFound(`file ${JSON.stringify(filename.slice(0, 200))} of project ${name}`);
      }),
    )
    .all(methodNotAllowed());

  // Deeper paths: nothing is served there.
  router.use(wrap(async (req) => {
    throw notFound(`path ${JSON.stringify(req.path.slice(0, 200))}`);
  }));
  return router;
}

/**
 * The published index (mount it at e.g. `/simple/`). Only published files appear; a project name
 * that is only reserved by a first-release session answers 404.
 */
export function publishedIndexRouter(opts: SimpleIndexOptions): Router {
  const view = publishedView(opts.store);
  return repositoryRouter(async () => view, opts.blobs, (what) => new ProblemError('not-found', `This index has no ${what}.`));
}

/**
 * Stage previews (PEP 694 "Staged Previews"): mounted at `{stagePath}`, the stage of a publishing
 * session is the repository at `{stagePath}{session-token}/`. It lists only that session's
 * completed files and needs no credentials: the unguessable token is the capability. After
 * publish, cancel or expiry every URL under it answers 404, and so does an unknown token, with the
 * same detail whichever part of the URL was wrong.
 */
export function stagePreviewRouter(opts: SimpleIndexOptions): Router {
  const clock = opts.clock ?? { now: () => new Date() };
  const notFound: NotFound = () =>
    new ProblemError('not-found', 'Nothing is staged at this URL: the stage may have been published, canceled or expired, or the URL is wrong.');
  const router = Router({ caseSensitive: true, strict: true });
  // Capability URLs: never cached, never sent on as a Referer, never indexed.
  router.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Robots-Tag', 'noindex, nofollow');
    next();
  });
  router.use('/:token', repositoryRouter((req) => stageView(opts.store, String(req.params['token']), clock), opts.blobs, notFound));
  router.use(wrap(async () => {
    throw notFound('');
  }));
  return router;
}
