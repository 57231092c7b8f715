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
import { isValidProjectName, normalizeName, ProblemError, releaseKey, type BlobStore, type Clock } from '@pep694/core';
import { contentTypeFor, matchesEtag, sendBody } from './download.js';
import { negotiateSimpleType, SIMPLE_V1_JSON, type SimpleType } from './negotiate.js';
import { PageCache } from './page-cache.js';
import { primaryHash, projectDetailHtml, projectDetailJson, projectListHtml, projectListJson } from './render.js';
import { publishedView, stageView, versionsOf, type IndexStore, type RepositoryView } from './view.js';

export interface SimpleIndexOptions {
  readonly store: IndexStore;
  readonly blobs: Pick<BlobStore, 'read' | 'downloadUrl'>;
  /**
   * Seconds: when set and the blob store has `downloadUrl` (object storage), a file download
   * answers 302 to a URL of the store valid this long, instead of streaming the bytes through the
   * index. HEAD and conditional requests that match are still answered here.
   */
  readonly downloadRedirectTtl?: number;
  /** For stage expiry; default: the system clock. */
  readonly clock?: Clock;
  /**
   * Where rendered pages (and stage listings) are kept, keyed by the store's change counters.
   * Pass one cache to both routers to bound them together; default: a cache of
   * `DEFAULT_PAGE_CACHE_BYTES` (32 MiB) per router. `new PageCache({ maxBytes: 0 })` caches nothing.
   */
  readonly pageCache?: PageCache;
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
    next(
      new ProblemError('method-not-allowed', `${req.method} is not allowed here; the index is read-only (GET or HEAD).`, {
        headers: { Allow: 'GET, HEAD' },
      }),
    );
}

/** A rendered page as cached: its bytes, its media type, and its strong ETag (a digest of both). */
interface Page {
  readonly body: Buffer;
  readonly type: SimpleType;
  readonly etag: string;
}

function makePage(type: SimpleType, rendered: string | object): Page {
  const body = Buffer.from(typeof rendered === 'string' ? rendered : JSON.stringify(rendered));
  const etag = `"${createHash('sha256').update(type).update('\0').update(body).digest('base64url')}"`;
  return { body, type, etag };
}

/**
 * Sends a page from the cache, rendering it only when the cache has none for the current change
 * counter. A HEAD or a matching `If-None-Match` of a cached page costs the counter read and nothing
 * else. `render` answers undefined for a page that does not exist (not cached: a 404 is cheap).
 */
async function sendPage(
  req: Request,
  res: Response,
  view: RepositoryView,
  cache: PageCache,
  what: string,
  version: () => Promise<number>,
  render: (type: SimpleType) => Promise<string | object | undefined>,
  notFound: () => ProblemError,
): Promise<void> {
  const type = negotiateSimpleType(req.headers.accept, req.query['format']);
  const key = `${view.cacheScope}\0${what}\0${type}`;
  const v = await version(); // before the data: see PageCache
  let page = cache.get<Page>(key, v);
  if (!page) {
    const rendered = await render(type);
    if (rendered === undefined) throw notFound();
    page = makePage(type, rendered);
    cache.set(key, v, page, page.body.length + 200);
  }
  res.setHeader('Vary', 'Accept');
  res.setHeader('Cache-Control', CACHE[view.kind].page);
  res.setHeader('ETag', page.etag);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (matchesEtag(req.headers['if-none-match'], page.etag)) {
    res.status(304).end();
    return;
  }
  res.setHeader('Content-Type', page.type === SIMPLE_V1_JSON ? page.type : `${page.type}; charset=utf-8`);
  res.setHeader('Content-Length', String(page.body.length));
  res.status(200).end(req.method === 'HEAD' ? undefined : page.body);
}

/** The repository layout over whatever view `resolve` gives for the request. */
function repositoryRouter(
  resolve: ViewResolver,
  blobs: Pick<BlobStore, 'read' | 'downloadUrl'>,
  notFound: NotFound,
  cache: PageCache,
  redirectTtl: number | undefined,
): Router {
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
        await sendPage(
          req,
          res,
          v,
          cache,
          'projects',
          () => v.projectsVersion(),
          async (type) => {
            const projects = await v.projects();
            return type === SIMPLE_V1_JSON ? projectListJson(projects) : projectListHtml(projects);
          },
          () => notFound('this repository'),
        );
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
        await sendPage(
          req,
          res,
          v,
          cache,
          `project\0${name}`,
          () => v.filesVersion(name),
          async (type) => {
            const files = await v.files(name);
            if (!files) return undefined;
            return type === SIMPLE_V1_JSON ? projectDetailJson(name, files, versionsOf(files)) : projectDetailHtml(name, files);
          },
          () => notFound(`project ${name}`),
        );
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
          const etag = `"${h ? `${h.name}-${h.hex}` : file.blobKey}"`;
          if (redirectTtl !== undefined && blobs.downloadUrl && req.method === 'GET' && !matchesEtag(req.headers['if-none-match'], etag)) {
            const target = await blobs.downloadUrl(file.blobKey, redirectTtl, { contentType: contentTypeFor(file.filename) });
            if (target !== undefined) {
              // The URL expires: nothing may keep the redirect longer than the page that led to it.
              res.setHeader('Cache-Control', 'no-store');
              res.redirect(302, target);
              return;
            }
          }
          return sendBody(req, res, {
            size: file.size,
            contentType: contentTypeFor(file.filename),
            etag,
            ...(file.uploadTime ? { lastModified: file.uploadTime } : {}),
            cacheControl,
            open: (range) => blobs.read(file.blobKey, range),
          });
        }
        if (filename.endsWith('.metadata')) {
          const dist = await v.file(name, filename.slice(0, -'.metadata'.length));
          const meta = dist?.coreMetadataSha256 ? await v.coreMetadata(name, dist) : undefined;
          if (dist && meta) {
            const bytes = Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength);
            return sendBody(req, res, {
              size: bytes.length,
              contentType: contentTypeFor(filename),
              etag: `"sha256-${dist.coreMetadataSha256}"`,
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

  router
    .route('/integrity/:project/:version/:filename/provenance')
    .get(wrap(provenanceHandler(view, notFound)))
    .all(methodNotAllowed());

  // Deeper paths: nothing is served there.
  router.use(
    wrap(async (req) => {
      throw notFound(`path ${JSON.stringify(req.path.slice(0, 200))}`);
    }),
  );
  return router;
}

/**
 * `{project}/{version}/{filename}/provenance`: the file's PEP 740 provenance object (the layout of
 * PyPI's Integrity API). The project name must be the normalized one and the version the release
 * the file belongs to (PEP 440-equal spellings match); a file without a provenance is a 404.
 */
function provenanceHandler(view: (req: Request) => Promise<RepositoryView>, notFound: NotFound) {
  return async (req: Request, res: Response): Promise<void> => {
    const v = await view(req);
    const project = String(req.params['project']);
    const version = String(req.params['version']);
    const filename = String(req.params['filename']);
    const what = `provenance for ${JSON.stringify(filename.slice(0, 200))}`;
    if (!isValidProjectName(project) || normalizeName(project) !== project) throw notFound(what);
    const file = await v.file(project, filename);
    if (!file || !file.hasProvenance || !sameRelease(file.version, version)) throw notFound(what);
    const provenance = await v.provenance(project, file);
    if (!provenance) throw notFound(what);
    const body = Buffer.from(JSON.stringify(provenance));
    res.setHeader('Cache-Control', CACHE[v.kind].page);
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Length', String(body.length));
    res.status(200).end(req.method === 'HEAD' ? undefined : body);
  };
}

function sameRelease(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return releaseKey(a) === releaseKey(b);
  } catch {
    return false;
  }
}

/**
 * The published files' PEP 740 provenance at PyPI's Integrity API URLs: mount it at `/integrity/`
 * and `{mount}{project}/{version}/{filename}/provenance` answers. The published index serves the
 * same at `{simple}integrity/…`, which its pages link to (relative, so right behind any prefix).
 */
export function publishedIntegrityRouter(opts: SimpleIndexOptions): Router {
  const view = publishedView(opts.store);
  const notFound: NotFound = (what) => new ProblemError('not-found', `This index has no ${what}.`);
  const router = Router({ caseSensitive: true, strict: true });
  router
    .route('/:project/:version/:filename/provenance')
    .get(wrap(provenanceHandler(async () => view, notFound)))
    .all(methodNotAllowed());
  router.use(
    wrap(async (req) => {
      throw notFound(`path ${JSON.stringify(req.path.slice(0, 200))}`);
    }),
  );
  return router;
}

/**
 * The published index (mount it at e.g. `/simple/`). Only published files appear; a project name
 * that is only reserved by a first-release session answers 404.
 */
export function publishedIndexRouter(opts: SimpleIndexOptions): Router {
  const view = publishedView(opts.store);
  return repositoryRouter(
    async () => view,
    opts.blobs,
    (what) => new ProblemError('not-found', `This index has no ${what}.`),
    opts.pageCache ?? new PageCache(),
    opts.downloadRedirectTtl,
  );
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
    new ProblemError(
      'not-found',
      'Nothing is staged at this URL: the stage may have been published, canceled or expired, or the URL is wrong.',
    );
  const router = Router({ caseSensitive: true, strict: true });
  // Capability URLs: never cached, never sent on as a Referer, never indexed.
  router.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Robots-Tag', 'noindex, nofollow');
    next();
  });
  const cache = opts.pageCache ?? new PageCache();
  router.use(
    '/:token',
    repositoryRouter(
      (req) => stageView(opts.store, String(req.params['token']), clock, cache),
      opts.blobs,
      notFound,
      cache,
      opts.downloadRedirectTtl,
    ),
  );
  router.use(
    wrap(async () => {
      throw notFound('');
    }),
  );
  return router;
}
