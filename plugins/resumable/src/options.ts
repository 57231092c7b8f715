/**
 * The options of the resumable mechanism: one zod schema, with every default; the type the
 * mechanism takes is what it parses to. Unknown keys are refused, so a typo fails at startup.
 */
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE, LingerBudgetSchema, OPERATOR_SEGMENT } from '@pep694/core';
import { z } from 'zod';
import type { UploadLock } from './lock.js';

/** The draft interop versions served: 6 (draft -05, tus-js-client's `ietf-draft-05`) and 8 (the working copy after -11). */
export const INTEROP_VERSIONS = [6, 8] as const;
export type InteropVersion = (typeof INTEROP_VERSIONS)[number];

/** How long (ms) an offset retrieval or cancellation waits for a running append to end before cutting it. */
export const DEFAULT_APPEND_DRAIN_TIMEOUT = 3000;

export const ResumableOptionsSchema = z
  .strictObject({
    /**
     * The operator segment of the identifiers `vnd-<operator>-resumable-i6` and
     * `vnd-<operator>-resumable-i8` (PEP 694 "Server Specific File Upload Mechanisms"): it names the
     * index serving the mechanism, so there is no default.
     */
    operator: z.string().regex(OPERATOR_SEGMENT, 'must contain only [a-z0-9] (it becomes vnd-<operator>-resumable-i<N>)'),
    /**
     * Directory of the uploads in progress (a data file and an info file per upload, one
     * subdirectory per interop version). Put it on the same filesystem as the blob store (e.g.
     * `<dataDir>/resumable`) so a finished upload is handed over by rename; it must survive restarts
     * for uploads to resume.
     */
    directory: z.string().min(1),
    /** The interop versions served, one mechanism (identifier) each. A breaking draft change is a new identifier. */
    interopVersions: z
      .array(z.union([z.literal(6), z.literal(8)]))
      .min(1)
      .default([...INTEROP_VERSIONS])
      .refine((v) => new Set(v).size === v.length, 'list each interop version once'),
    /** Most bytes one creation or append request may carry (`Upload-Limit: max-append-size`; 413 beyond). Unset: no limit. */
    maxAppendSize: z.number().int().positive().optional(),
    /** Decline files larger than this at negotiation (422 `mechanism-declined`). Unset: every size the host accepts. */
    maxFileSize: z.number().int().nonnegative().optional(),
    /**
     * When the in-stream hash state was lost (a restart mid-upload) and the host must read the file
     * to hash it, verify in the background (202 + `processing`) for files above this many bytes.
     * Unset: the host's `limits.deferVerificationAbove` decides.
     */
    deferVerificationAbove: z.number().int().nonnegative().optional(),
    /**
     * How long (ms) an offset retrieval (HEAD, GET) or a cancellation (DELETE) waits for an append
     * still running on the same upload before cutting it (the draft: the client has given up on it).
     */
    appendDrainTimeout: z.number().int().nonnegative().default(DEFAULT_APPEND_DRAIN_TIMEOUT),
    /**
     * Close an append's connection when no bytes arrive for this many milliseconds; the bytes that
     * arrived are kept (the client resumes from the offset). 0 disables it.
     */
    idleTimeout: z.number().int().nonnegative().default(DEFAULT_IDLE_TIMEOUT),
    /** Close an append's connection when it averages fewer bytes per second than this over an `idleTimeout` window (slowloris); 0 disables it. */
    minRate: z.number().int().nonnegative().default(DEFAULT_MIN_RATE),
    /** How much of a refused request's body is read before the answer (`{ bytes, ms }`; see `answerAfterBody`). */
    linger: LingerBudgetSchema,
    /**
     * Several server processes (nodes) share `directory` (one path on one machine; NFS, EFS or
     * another shared filesystem across machines), so any node serves any request of an upload:
     * every request reads the offset and the info from disk instead of this process's memory, and
     * appends are kept apart by `lock`. Requires `lock`.
     */
    shared: z.boolean().default(false),
    /**
     * The lock that keeps appends to one upload apart across processes (see `UploadLock`, e.g.
     * `PostgresAdvisoryLocks` from `@pep694/store-postgres`); taken by every creation and append
     * for as long as it writes, and by offset retrievals, cancellations and completions to wait
     * for a running append. Unset: appends are kept apart in this process only.
     */
    lock: z
      .custom<UploadLock>((v) => typeof v === 'object' && v !== null && typeof (v as UploadLock).tryLock === 'function', {
        message: 'must have a tryLock(key) method',
      })
      .optional(),
  })
  .refine((o) => !o.shared || o.lock !== undefined, {
    message: 'shared: true needs a lock that works across the processes',
    path: ['lock'],
  });

/** What an operator passes (`operator` and `directory` required). */
export type ResumableOptionsInput = z.input<typeof ResumableOptionsSchema>;
/** The parsed options the mechanism takes: build them with `ResumableOptionsSchema.parse(...)`. */
export type ResumableOptions = z.output<typeof ResumableOptionsSchema>;
