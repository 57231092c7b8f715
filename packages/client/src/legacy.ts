/**
 * The legacy upload API (PEP 694 "Legacy API"): one `multipart/form-data` POST per file with
 * `:action=file_upload`, `protocol_version=1`, the core metadata as form fields (named as twine
 * and Warehouse's `forklift/legacy.py` name them), the digests, and the file as the `content` part;
 * credentials as HTTP Basic. The client falls back to it when the Upload 2.0 root answers 404 or
 * 406 (PEP 694 "Legacy API Fallback"), or when `--protocol legacy` says so. The file is streamed
 * between the form's framing, as the multipart half does.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { HttpAnswerError, openUploadBody, parseRetryAfter, problemOf, sendRequest, type HttpAnswer } from '@pep694/core/node-http';
import { withRetries } from './api.js';
import { multipartFraming } from '@pep694/mechanism-multipart/client';
import type { CoreMetadata } from './dist-metadata.js';
import { findAttestations, type Dist, type Release } from './dists.js';
import { publishedFileVerdict } from './errors.js';

/** Core metadata header → legacy form field (twine's `metadata_dictionary`). */
const FIELDS: Readonly<Record<string, string>> = {
  'metadata-version': 'metadata_version',
  summary: 'summary',
  'home-page': 'home_page',
  author: 'author',
  'author-email': 'author_email',
  maintainer: 'maintainer',
  'maintainer-email': 'maintainer_email',
  license: 'license',
  'license-expression': 'license_expression',
  'license-file': 'license_file',
  keywords: 'keywords',
  platform: 'platform',
  classifier: 'classifiers',
  'download-url': 'download_url',
  'supported-platform': 'supported_platform',
  'project-url': 'project_urls',
  'requires-dist': 'requires_dist',
  'provides-dist': 'provides_dist',
  'obsoletes-dist': 'obsoletes_dist',
  'requires-external': 'requires_external',
  'requires-python': 'requires_python',
  'provides-extra': 'provides_extras',
  'description-content-type': 'description_content_type',
  dynamic: 'dynamic',
};

async function digests(path: string): Promise<{ md5: string; sha256: string }> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    md5.update(chunk as Buffer);
    sha256.update(chunk as Buffer);
  }
  return { md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}

/** The form fields of one file, in the order twine sends them. */
export function legacyFields(
  dist: Dist,
  metadata: CoreMetadata,
  d: { md5: string; sha256: string },
  attestations: readonly unknown[],
): [string, string][] {
  const fields: [string, string][] = [
    [':action', 'file_upload'],
    ['protocol_version', '1'],
    ['name', metadata.headers.get('name')?.[0] ?? dist.name],
    ['version', metadata.headers.get('version')?.[0] ?? dist.version],
    ['filetype', dist.kind === 'wheel' ? 'bdist_wheel' : 'sdist'],
    ['pyversion', dist.kind === 'wheel' ? (dist.filename.split('-').at(-3) ?? 'py3') : 'source'],
  ];
  for (const [header, field] of Object.entries(FIELDS)) for (const v of metadata.headers.get(header) ?? []) fields.push([field, v]);
  const description = metadata.body.trim() !== '' ? metadata.body : metadata.headers.get('description')?.[0];
  if (description) fields.push(['description', description]);
  fields.push(['md5_digest', d.md5], ['sha256_digest', d.sha256]);
  if (attestations.length > 0) fields.push(['attestations', JSON.stringify(attestations)]);
  return fields;
}

export interface LegacyUploadOptions {
  /** The legacy endpoint, e.g. `https://upload.pypi.org/legacy/`. */
  readonly url: string;
  /** `Authorization: Basic …` (`__token__` and the token, as twine sends). */
  readonly authorization: string | undefined;
  readonly release: Release;
  readonly signal?: AbortSignal;
  readonly onProgress?: (filename: string, sent: number, total: number) => void;
  readonly onFileStart?: (filename: string, size: number) => void;
  readonly onFileDone?: (filename: string, size: number, sha256: string) => void;
  readonly onFileSkipped?: (filename: string, size: number, reason: string) => void;
  /**
   * Skip a file the index answers already exists (twine's `--skip-existing`: 409, or 400 saying
   * "already exist"), unless the answer names a published sha256 other than this file's.
   */
  readonly skipExisting?: boolean;
  readonly userAgent?: string;
  /** Told before an upload is sent again (see `retryDelay`: only what the index did not take): what failed, and the wait. */
  readonly onRetry?: (what: string, seconds: number, attempt: number) => void;
}

export interface LegacyFileResult {
  readonly filename: string;
  readonly size: number;
  readonly sha256: string;
  /** `completed` (uploaded, so published), or `already-published` (`skipExisting`). */
  readonly status: 'completed' | 'already-published';
}

/**
 * Whether a refused upload says the file exists already: this index's problem says it with its
 * code (`file-already-published`); other answers are read as twine's `--skip-existing` reads them
 * (409, or 400 saying "already exist", PyPI's). Then `same` or `other` when it names the published sha256
 * (`published-sha256`), `unknown` when not. Undefined for any other refusal, or when it names
 * another file (`published-filename`: another spelling of the distribution).
 */
export function legacyAlreadyExists(answer: HttpAnswer, filename: string, sha256: string): 'same' | 'other' | 'unknown' | undefined {
  const problem = problemOf(answer);
  // A problem with a code says exactly what was refused; twine's heuristics are for the others.
  const says =
    typeof problem?.['code'] === 'string'
      ? problem['code'] === 'file-already-published'
      : answer.status === 409 || (answer.status === 400 && /already exist/i.test(answer.text));
  return says ? publishedFileVerdict(problem, filename, sha256) : undefined;
}

/** Uploads each file of a release with its own POST, one after the other (the legacy API publishes each at once). */
export async function uploadLegacy(opts: LegacyUploadOptions): Promise<LegacyFileResult[]> {
  const done: LegacyFileResult[] = [];
  for (const dist of opts.release.dists) {
    // Loaded here: the archive readers are needed by legacy uploads only, not at every start.
    const { sdistMetadata, wheelMetadata } = await import('./dist-metadata.js');
    const metadata = dist.kind === 'wheel' ? await wheelMetadata(dist.path) : await sdistMetadata(dist.path);
    const d = await digests(dist.path);
    const { attestations } = await findAttestations(dist.path);
    const framing = multipartFraming({
      fileField: 'content',
      filename: dist.filename,
      fields: legacyFields(dist, metadata, d, attestations).map(([name, value]) => ({ name, value })),
    });
    const url = new URL(opts.url);
    opts.onFileStart?.(dist.filename, dist.size);
    const send = async (): Promise<HttpAnswer> => {
      const { source, total } = await openUploadBody(dist.path, dist.size);
      return sendRequest({
        method: 'POST',
        url,
        headers: {
          ...(opts.authorization ? { Authorization: opts.authorization } : {}),
          'Content-Type': framing.contentType,
          // A refusal as a problem document where the index has one (its published-sha256 says
          // whether an existing file is this one), else the text legacy indexes send.
          Accept: 'application/problem+json, text/plain;q=0.9, */*;q=0.5',
          'User-Agent': opts.userAgent ?? 'pep694-client',
        },
        body: {
          source,
          size: total,
          head: framing.head,
          tail: framing.tail,
          onProgress: (sent, size) => opts.onProgress?.(dist.filename, sent, size),
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    };
    // The legacy API publishes a file with the POST that uploads it: it is sent again only when
    // the index cannot have taken it (503, 429, a connection refused), never after a broken one.
    const answer = await withRetries('POST', url.href, send, (a) => parseRetryAfter(a.headers['retry-after']), {
      ...(opts.onRetry ? { onRetry: opts.onRetry } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (answer.status < 200 || answer.status >= 300) {
      const exists = opts.skipExisting ? legacyAlreadyExists(answer, dist.filename, d.sha256) : undefined;
      if (exists === 'same' || exists === 'unknown') {
        opts.onFileSkipped?.(
          dist.filename,
          dist.size,
          exists === 'same' ? 'already published with the same sha256' : 'already exists on the index',
        );
        done.push({ filename: dist.filename, size: dist.size, sha256: d.sha256, status: 'already-published' });
        continue;
      }
      throw new HttpAnswerError('POST', url.href, answer.status, problemOf(answer), answer.text);
    }
    done.push({ filename: dist.filename, size: dist.size, sha256: d.sha256, status: 'completed' });
    opts.onFileDone?.(dist.filename, dist.size, d.sha256);
  }
  return done;
}
