/**
 * zod schemas of every PEP 694 request and response body. The inferred types are the ones the
 * rest of the toolkit uses. Request schemas check shape only; the semantic rules (name, version,
 * file name, hashes) live in `validate/` and run after parsing, so each failure gets its own code.
 *
 * Requests ignore unknown top-level keys: a 2.x minor version may add optional keys, and minor
 * versions "should never be disruptive" (PEP 694 "Content Types").
 */
import { z } from 'zod';
import { ProblemError, type ProblemFieldError } from './problem.js';
import { FILE_UPLOAD_STATES } from './state/file-upload-session.js';
import { PUBLISHING_SESSION_STATES } from './state/publishing-session.js';
import { isValidExpiresAt } from './validate/time.js';

/**
 * `meta`: `api-version` ("MAJOR.MINOR") plus optional index-specific keys, which MUST begin with
 * an underscore (PEP 694 "Optional Index-specific Metadata"). Their values are the index's business.
 */
export const MetaSchema = z
  .object({
    'api-version': z.string().regex(/^\d+\.\d+$/, 'must be a "MAJOR.MINOR" version string such as "2.0"'),
  })
  .catchall(z.unknown())
  .superRefine((meta, ctx) => {
    for (const key of Object.keys(meta)) {
      if (key !== 'api-version' && !/^_./.test(key)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'index-specific meta keys must begin with "_" followed by the index identifier',
        });
      }
    }
  });
export type Meta = z.infer<typeof MetaSchema>;

const nonEmpty = (what: string) => z.string().min(1, `${what} must not be empty`);
const url = z.string().url();
const expiresAt = z.string().refine(isValidExpiresAt, 'must be an RFC 3339 UTC timestamp with Z and whole seconds');
const notices = z.array(z.string());

// ---- Publishing session -----------------------------------------------------------------------

/** PEP 694 "Create a Publishing Session". */
export const CreatePublishingSessionRequestSchema = z.object({
  meta: MetaSchema,
  name: nonEmpty('name').max(512),
  version: nonEmpty('version').max(256),
});
export type CreatePublishingSessionRequest = z.infer<typeof CreatePublishingSessionRequestSchema>;

/** PEP 694 "Complete a Publishing Session". */
export const PublishRequestSchema = z.object({ meta: MetaSchema });
export type PublishRequest = z.infer<typeof PublishRequestSchema>;

/** PEP 694 "Publishing Session Extension" and "File Upload Session Extension". */
export const ExtendRequestSchema = z.object({
  meta: MetaSchema,
  'extend-for': z
    .number()
    .int('must be a whole number of seconds')
    .positive('must be a positive number of seconds')
    .max(Number.MAX_SAFE_INTEGER),
});
export type ExtendRequest = z.infer<typeof ExtendRequestSchema>;

/** PEP 694 "Publishing Session Links". `extend` and `stage` are omitted when not supported. */
export const PublishingSessionLinksSchema = z.object({
  session: url,
  upload: url,
  publish: url,
  extend: url.optional(),
  stage: url.optional(),
});

/** PEP 694 "Publishing Session Files": `canceled` never appears here. */
export const SessionFileSchema = z.object({
  status: z.enum(FILE_UPLOAD_STATES.filter((s) => s !== 'canceled') as ['pending', 'processing', 'completed', 'error']),
  link: url,
  notices: notices.optional(),
});
export type SessionFile = z.infer<typeof SessionFileSchema>;

/** PEP 694 publishing session "Response Body" (create, status, extend). */
export const PublishingSessionResponseSchema = z.object({
  meta: MetaSchema,
  links: PublishingSessionLinksSchema,
  mechanisms: z.array(nonEmpty('mechanism')).min(1, 'at least one mechanism is required'),
  'session-token': nonEmpty('session-token').optional(),
  'expires-at': expiresAt,
  status: z.enum(PUBLISHING_SESSION_STATES),
  files: z.record(z.string(), SessionFileSchema),
  notices: notices.optional(),
});
export type PublishingSessionResponse = z.infer<typeof PublishingSessionResponseSchema>;

// ---- File upload session ----------------------------------------------------------------------

/** PEP 694 "Create a File Upload Session". Hash names and digests are checked by `validateHashes`. */
export const CreateFileUploadRequestSchema = z.object({
  meta: MetaSchema,
  filename: nonEmpty('filename').max(1024),
  size: z.number().int('must be a whole number of bytes').nonnegative().max(Number.MAX_SAFE_INTEGER),
  hashes: z.record(z.string(), z.string()),
  mechanism: nonEmpty('mechanism').max(256),
});
export type CreateFileUploadRequest = z.infer<typeof CreateFileUploadRequestSchema>;

/** PEP 694 "Complete a File Upload Session". */
export const CompleteFileUploadRequestSchema = z.object({ meta: MetaSchema });
export type CompleteFileUploadRequest = z.infer<typeof CompleteFileUploadRequestSchema>;

/** PEP 694 "File Upload Session Links". */
export const FileUploadLinksSchema = z.object({
  'file-upload-session': url,
  complete: url,
  extend: url.optional(),
});

/** The `mechanism` map: MUST contain `identifier`; the rest is the mechanism's own. */
export const MechanismMapSchema = z.object({ identifier: nonEmpty('identifier') }).catchall(z.unknown());
export type MechanismMap = z.infer<typeof MechanismMapSchema>;

/** PEP 694 file upload session "Response Body" (create, status, extend). */
export const FileUploadSessionResponseSchema = z.object({
  meta: MetaSchema,
  links: FileUploadLinksSchema,
  status: z.enum(FILE_UPLOAD_STATES),
  'expires-at': expiresAt,
  mechanism: MechanismMapSchema,
  notices: notices.optional(),
});
export type FileUploadSessionResponse = z.infer<typeof FileUploadSessionResponseSchema>;

// ---- Problem documents (for clients and checkers reading error responses) ----------------------

/** RFC 9457 problem details with PEP 694's `meta` and `errors` extension members. */
export const ProblemDocumentSchema = z
  .object({
    type: z.string().optional(),
    status: z.number().int().min(400).max(599).optional(),
    title: z.string().optional(),
    detail: z.string().optional(),
    details: z.string().optional(),
    meta: MetaSchema.optional(),
    errors: z.array(z.object({ source: z.string(), message: z.string() })).optional(),
  })
  .catchall(z.unknown());

// ---- Parsing -------------------------------------------------------------------------------------

/** zod issues as the PEP's `errors` entries, with JSON-pointer sources. */
export function issuesToFieldErrors(issues: readonly z.core.$ZodIssue[]): ProblemFieldError[] {
  return issues.map((issue) => ({
    source: `/${issue.path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`,
    message: issue.message,
  }));
}

/**
 * Parses `body` with `schema`. Any mismatch, including a body that is not an object at all,
 * becomes one `invalid-body` ProblemError listing every field error; nothing else is thrown.
 */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown, what = 'request body'): z.infer<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const errors = issuesToFieldErrors(result.error.issues);
  const first = errors[0];
  const detail =
    errors.length === 1 && first
      ? `The ${what} is invalid at ${first.source}: ${first.message}.`
      : `The ${what} has ${errors.length} invalid fields; see errors.`;
  throw new ProblemError('invalid-body', detail, { errors });
}
