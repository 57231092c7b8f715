/**
 * The options of the tus mechanism: one zod schema, with every default; the type the mechanism
 * takes is what it parses to. Unknown keys are refused, so a typo fails at startup.
 */
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE, LingerBudgetSchema, OPERATOR_SEGMENT } from '@pep694/core';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { Locker } from '@tus/server';
import { z } from 'zod';

/**
 * Where the uploads in progress live when several nodes share them: a bucket (`@tus/s3-store`).
 * `client` is the AWS SDK's S3 client configuration (endpoint, region, forcePathStyle, credentials;
 * unset parts from the SDK's standard chain).
 */
export const TusS3OptionsSchema = z.strictObject({
  bucket: z.string().min(1),
  /** Prefix of every object the tus uploads write (empty, or ending in `/`). */
  prefix: z
    .string()
    .regex(/^([A-Za-z0-9._-]+\/)*$/, "a prefix is '' or slash-separated segments ending in '/'")
    .default(''),
  client: z.custom<S3ClientConfig>((v) => typeof v === 'object' && v !== null, 'an S3 client configuration object').default({}),
  /** Preferred bytes per part, at least 5 MiB (S3's minimum); default 8 MiB. */
  partSize: z
    .number()
    .int()
    .min(5 * 1024 * 1024)
    .optional(),
});

/** @tus/server's `lockDrainTimeout` here: 3 s. */
export const DEFAULT_LOCK_DRAIN_TIMEOUT = 3000;

export const TusOptionsSchema = z
  .strictObject({
    /**
     * The operator segment of the identifier `vnd-<operator>-tus` (PEP 694 "Server Specific File
     * Upload Mechanisms"): it names the index serving the mechanism, so there is no default.
     */
    operator: z.string().regex(OPERATOR_SEGMENT, 'must contain only [a-z0-9] (it becomes vnd-<operator>-tus)'),
    /**
     * Directory where @tus/file-store keeps uploads in progress (a data file and an info file per
     * upload). Put it on the same filesystem as the blob store (e.g. `<dataDir>/tus`), so a finished
     * upload can be handed over by rename; it must survive restarts for uploads to resume.
     */
    directory: z.string().min(1).optional(),
    /**
     * Keep the uploads in progress in a bucket instead of `directory`, so that any node can continue
     * an upload (with a `locker` that works across processes). See "Several nodes" in the README.
     */
    s3: TusS3OptionsSchema.optional(),
    /**
     * The tus lock of each upload (any @tus/server `Locker`): unset, one per process
     * (`MemoryLocker`); with several nodes, one they share (e.g. `PostgresTusLocker` of
     * `@pep694/store-postgres`), so two nodes never append to one upload at once.
     */
    locker: z.custom<Locker>((v) => typeof (v as Locker | null)?.newLock === 'function', 'a @tus/server Locker (newLock(id))').optional(),
    /** Most bytes one PATCH may carry (413 `body-too-large` beyond), advertised as `max_chunk_size`. Unset: no limit. */
    maxChunkSize: z.number().int().positive().optional(),
    /** Decline files larger than this at negotiation (422 `mechanism-declined`). Unset: every size the host accepts. */
    maxFileSize: z.number().int().nonnegative().optional(),
    /**
     * When the in-stream hash state was lost (a restart mid-upload) and the host must read the file
     * to hash it, verify in the background (202 + `processing`) for files above this many bytes.
     * Unset: the host's `limits.deferVerificationAbove` decides.
     */
    deferVerificationAbove: z.number().int().nonnegative().optional(),
    /**
     * How long (ms) a PATCH that holds an upload may finish after another request (a resuming
     * client's HEAD) asks for the upload, before it is cut (@tus/server's `lockDrainTimeout`).
     */
    lockDrainTimeout: z.number().int().nonnegative().default(DEFAULT_LOCK_DRAIN_TIMEOUT),
    /**
     * Close a PATCH's connection when no bytes arrive for this many milliseconds, so a stalled client
     * does not hold it until the host's requestTimeout; the bytes that arrived are kept (the client
     * resumes from HEAD's offset). 0 disables it.
     */
    idleTimeout: z.number().int().nonnegative().default(DEFAULT_IDLE_TIMEOUT),
    /** Close a PATCH's connection when it averages fewer bytes per second than this over an `idleTimeout` window (slowloris); 0 disables it. */
    minRate: z.number().int().nonnegative().default(DEFAULT_MIN_RATE),
    /** How much of a refused request's body is read before the answer (`{ bytes, ms }`; see `answerAfterBody`). */
    linger: LingerBudgetSchema,
  })
  .refine((o) => (o.directory === undefined) !== (o.s3 === undefined), {
    message: 'give either directory (uploads on local disk) or s3 (uploads in a bucket), not both',
    path: ['directory'],
  });

/** What an operator passes (`operator`, and `directory` or `s3`, required). */
export type TusOptionsInput = z.input<typeof TusOptionsSchema>;
/** The parsed options the mechanism takes: build them with `TusOptionsSchema.parse(...)`. */
export type TusOptions = z.output<typeof TusOptionsSchema>;
