/**
 * The draft's problem types (RFC 9457 documents with the draft's IANA type URIs, so a client of
 * the draft recognises them; the index's `code` and `meta` are there too), and the other refusals
 * of the upload resource with the fields the draft wants on them.
 */
import { ProblemError } from '@pep694/core';
import { sfBoolean } from './fields.js';
import type { InteropVersion } from './options.js';

const IANA = 'https://iana.org/assignments/http-problem-types';

/**
 * 409 `mismatching-upload-offset` (draft: "Mismatching Offset"), with the resource's offset in
 * `Upload-Offset` and both offsets as the `expected-offset` and `provided-offset` members.
 */
export function mismatchingOffset(expected: number, provided: number): ProblemError {
  return new ProblemError(
    'mismatching-upload-offset',
    `Upload-Offset ${provided} does not match the upload's offset ${expected}: append from offset ${expected} (HEAD the upload resource for it).`,
    {
      type: `${IANA}#mismatching-upload-offset`,
      title: 'offset from request does not match offset of resource',
      headers: { 'Upload-Offset': String(expected), 'Upload-Complete': sfBoolean(false) },
      extensions: { 'expected-offset': expected, 'provided-offset': provided },
    },
  );
}

/** 400 `inconsistent-upload-length` (draft: "Inconsistent Length"): `detail` says which values disagree. */
export function inconsistentLength(detail: string, offset?: number): ProblemError {
  return new ProblemError('inconsistent-upload-length', detail, {
    type: `${IANA}#inconsistent-upload-length`,
    title: 'inconsistent length values for upload',
    headers: { 'Upload-Complete': sfBoolean(false), ...(offset !== undefined ? { 'Upload-Offset': String(offset) } : {}) },
  });
}

/**
 * 400 `completed-upload`: an append to an upload that is complete. Draft -05 (interop 6) registers
 * this problem type; the working copy (interop 8) dropped it, so there it carries the index's type.
 */
export function completedUpload(version: InteropVersion, offset: number): ProblemError {
  return new ProblemError(
    'completed-upload',
    `This upload is complete (${offset} bytes): nothing more can be appended. Complete the file upload session.`,
    {
      ...(version === 6 ? { type: `${IANA}#completed-upload` } : {}),
      headers: { 'Upload-Offset': String(offset), 'Upload-Complete': sfBoolean(true) },
    },
  );
}

/** 404 for an upload resource that is not (or no longer) active. */
export const noUpload = (): ProblemError =>
  new ProblemError(
    'not-found',
    'There is no active upload resource at this URL (it was canceled, replaced by a newer upload creation, or its data was handed over at completion); create the upload again at creation_url.',
  );

/**
 * 409 `upload-in-progress`: another request, possibly on another server node, is writing to this
 * upload (the draft: one transfer per upload resource at a time, and an offset sent must be one a
 * following append is accepted at, so nothing is answered while another node writes).
 */
export const uploadInProgress = (doing: string): ProblemError =>
  new ProblemError(
    'upload-in-progress',
    `Another request is appending to this upload (the draft allows one at a time), so it cannot ${doing} now. An append the client gave up on ends when its connection closes or stays idle; retry then: HEAD the upload resource for the offset and append from it.`,
    { headers: { 'Retry-After': '1' } },
  );
