/**
 * The options of the tus mechanism: one zod schema, with every default; the type the mechanism
 * takes is what it parses to. Unknown keys are refused, so a typo fails at startup.
 */
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE, LingerBudgetSchema, OPERATOR_SEGMENT } from '@pep694/core';
import { z } from 'zod';

/** @tus/server's `lockDrainTimeout` here: 3 s. */
export const DEFAULT_LOCK_DRAIN_TIMEOUT = 3000;

export const TusOptionsSchema = z.strictObject({
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
  directory: z.string().min(1),
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
});

/** What an operator passes (`operator` and `directory` required). */
export type TusOptionsInput = z.input<typeof TusOptionsSchema>;
/** The parsed options the mechanism takes: build them with `TusOptionsSchema.parse(...)`. */
export type TusOptions = z.output<typeof TusOptionsSchema>;
