/**
 * The problems of the index's own rules beyond the state machines: one file per distribution
 * (file identity, `distributionIdentity` in core), the staged-bytes quota, and the rate of new
 * project names. Each names what was refused and how to get past it.
 */
import { ProblemError, type FileUploadRecord } from '@pep694/core';
import type { Links } from './links.js';

/**
 * 409: `published` (a file of the same identity) is published, or claimed by a publish in flight.
 * `publishedSha256`, known once it is published, lets a client re-running an upload tell the same
 * file (skip it: `pep694 upload --skip-existing`) from a rebuilt one (a new version is needed).
 */
export function alreadyPublished(filename: string, published: string = filename, publishedSha256?: string): ProblemError {
  const what = published === filename ? filename : `${filename} is the same distribution as ${published}, which`;
  return new ProblemError(
    'file-already-published',
    `${what} is already published for this release (or is being published by another session); published files are immutable.`,
    {
      errors: [
        {
          source: '/filename',
          message: published === filename ? 'already published' : `the same distribution as ${published}, already published`,
        },
      ],
      extensions: { 'published-filename': published, ...(publishedSha256 ? { 'published-sha256': publishedSha256 } : {}) },
    },
  );
}

/** 409: another spelling of the same distribution is in the session (`Location`: its file upload session). */
export function sameDistribution(filename: string, file: FileUploadRecord, links: Links): ProblemError {
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
export function overQuota(size: number, quota: number, used: number): ProblemError {
  return new ProblemError(
    'quota-exceeded',
    `This file (${showBytes(size)}) would exceed your quota of staged, unpublished files: the quota is ${showBytes(quota)}, and ${showBytes(used)} are in use. Publish, delete or cancel staged files first.`,
    { errors: [{ source: '/size', message: `over the quota by ${used + size - quota} bytes` }], extensions: { quota, used, size } },
  );
}

/** 429 with `Retry-After` (RFC 6585 section 4): the principal registered or reserved too many new names lately. */
export function tooManyNewNames(
  r: { limit: number; registered: number; reserved: number; retryAt: Date },
  now: Date,
  windowSeconds: number,
): ProblemError {
  const retryAfter = Math.max(1, Math.ceil((r.retryAt.getTime() - now.getTime()) / 1000));
  return new ProblemError(
    'rate-limited',
    `You may register at most ${r.limit} new project names per ${windowSeconds} s; you registered ${r.registered} in that time and your live sessions reserve ${r.reserved}. Retry after ${retryAfter} s, or publish or cancel a first-release session.`,
    { headers: { 'Retry-After': String(retryAfter) }, extensions: { limit: r.limit, registered: r.registered, reserved: r.reserved } },
  );
}
