/**
 * The options of the s3multipart-presigned mechanism: one zod schema, with every default. Unknown
 * keys are refused, so a typo fails at startup.
 */
import type { DirectUploadTarget } from '@pep694/blobs-s3';
import { LingerBudgetSchema, OPERATOR_SEGMENT, vendorIdentifier } from '@pep694/core';
import { z } from 'zod';

/** The implementation segment of the identifier: `vnd-<operator>-s3multipart-presigned` (PEP 694's own example). */
export const IMPLEMENTATION = 's3multipart-presigned';
/** S3's smallest part (every part but the last) and its largest, and its most parts per upload. */
export const S3_MIN_PART = 5 * 1024 ** 2;
export const S3_MAX_PART = 5 * 1024 ** 3;
export const S3_MAX_PARTS = 10_000;
/** S3's largest object. */
export const S3_MAX_OBJECT = 5 * 1024 ** 4;

const isTarget = (v: unknown): v is DirectUploadTarget => {
  const t = v as Partial<DirectUploadTarget> | null;
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof t.bucket === 'string' &&
    typeof t.directObject === 'function' &&
    typeof t.adoptDirectObject === 'function' &&
    typeof t.keyOfDirectObject === 'function' &&
    typeof t.s3?.send === 'function'
  );
};

export const S3PresignedOptionsSchema = z
  .strictObject({
    /**
     * The operator segment of the identifier, `[a-z0-9]+` (PEP 694: it "SHOULD clearly identify the
     * server operator"). Required: `{ operator: 'acme' }` serves `vnd-acme-s3multipart-presigned`.
     */
    operator: z
      .string({ error: 'operator is required: the index operator segment of vnd-<operator>-s3multipart-presigned, [a-z0-9]+' })
      .regex(OPERATOR_SEGMENT, {
        error: 'operator must contain only [a-z0-9] (PEP 694 "Server Specific File Upload Mechanisms")',
      }),
    /**
     * The host's blob store, an `S3BlobStore` of `@pep694/blobs-s3` (its `DirectUploadTarget`
     * port): the multipart uploads go to the object it will own for each file. Required; the same
     * instance the host is given as `blobs`.
     */
    store: z.custom<DirectUploadTarget>(isTarget, {
      error: 'store is required: the S3BlobStore (@pep694/blobs-s3) the host stores blobs in',
    }),
    /** Bytes per part (every part but the last); raised for a file that would need more than 10 000 parts. Default 16 MiB. */
    partSize: z
      .number()
      .int()
      .min(S3_MIN_PART)
      .max(S3_MAX_PART)
      .default(16 * 1024 ** 2),
    /** How long a presigned part URL is valid, in seconds (the client asks for fresh ones when they run out). Default 900. */
    urlTtl: z.number().int().min(1).max(604_800).default(900),
    /** Most part URLs in the instructions and in one answer of the parts route. Default 64. */
    batch: z.number().int().min(1).max(1000).default(64),
    /** Decline files larger than this at negotiation (422 `mechanism-declined`). Unset: every size the host and S3 (5 TiB) accept. */
    maxFileSize: z.number().int().nonnegative().optional(),
    /**
     * Verify files larger than this in the background (202 `processing`) whatever the host's
     * `limits.deferVerificationAbove`; unset: the host decides (it defers files above that limit,
     * 256 MiB by default). The verification reads the object back either way: S3 has no
     * whole-object SHA-256 of a multipart upload.
     */
    deferAbove: z.number().int().nonnegative().optional(),
    /** How much of a refused request's body is read before the answer (`{ bytes, ms }`; see `answerAfterBody`). */
    linger: LingerBudgetSchema,
  })
  // The mechanism takes its identifier, built (and checked) from the operator once, here.
  .transform(({ operator, ...rest }) => ({ identifier: vendorIdentifier(operator, IMPLEMENTATION), ...rest }));

/** What an operator passes (`operator` and `store` required). */
export type S3PresignedOptionsInput = z.input<typeof S3PresignedOptionsSchema>;
/** The parsed options the mechanism takes. */
export type S3PresignedOptions = z.output<typeof S3PresignedOptionsSchema>;
