/**
 * The options of http-post-bytes: one zod schema, with every default; the type the mechanism takes
 * is what it parses to. Unknown keys are refused, so a typo fails at startup.
 */
import { DEFAULT_ATTESTATIONS_MAX_BYTES, DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE, LingerBudgetSchema } from '@pep694/core';
import { z } from 'zod';

export const HttpPostBytesOptionsSchema = z.strictObject({
  /** Offer `attestations_url` and accept PEP 740 attestation objects (verified by the host's AttestationVerifier, when it has one, and stored with the file). */
  attestations: z.boolean().default(true),
  /** Largest attestations request body, in bytes (413 `body-too-large` beyond). */
  attestationsMaxBytes: z.number().int().positive().default(DEFAULT_ATTESTATIONS_MAX_BYTES),
  /**
   * Decline files larger than this at negotiation (422 `mechanism-declined`), e.g. to steer big
   * files to a resumable mechanism. Unset: every size the host accepts.
   */
  maxFileSize: z.number().int().nonnegative().optional(),
  /**
   * Stop a transfer when no bytes arrive for this many milliseconds (408 `request-timeout`, nothing
   * stored), so a stalled client does not hold the file's one transfer slot; 0 disables it.
   */
  idleTimeout: z.number().int().nonnegative().default(DEFAULT_IDLE_TIMEOUT),
  /**
   * Stop a transfer that averages fewer bytes per second than this over an `idleTimeout` window
   * (408 `request-timeout`, nothing stored), so a client trickling bytes cannot pin a connection
   * until the host's request timeout; 0 disables it.
   */
  minRate: z.number().int().nonnegative().default(DEFAULT_MIN_RATE),
  /** How much of a refused request's body is read before the answer (`{ bytes, ms }`; see `answerAfterBody`). */
  linger: LingerBudgetSchema,
});

/** What an operator passes (every key optional). */
export type HttpPostBytesOptionsInput = z.input<typeof HttpPostBytesOptionsSchema>;
/** The parsed options the mechanism takes: build them with `HttpPostBytesOptionsSchema.parse(...)`. */
export type HttpPostBytesOptions = z.output<typeof HttpPostBytesOptionsSchema>;
