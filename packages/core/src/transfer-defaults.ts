/**
 * The defaults of the options every first-party mechanism shares, one constant each, so that the
 * plugins' option schemas, their READMEs and the host's docs say the same thing. Plain values (no
 * zod, no node:http): `@pep694/core/node-http` and the client halves load this too.
 */

/** Stop (or cut) a transfer when no bytes arrive for this many milliseconds: 120 s. */
export const DEFAULT_IDLE_TIMEOUT = 120_000;

/** Stop (or cut) a transfer averaging fewer bytes per second than this over an idle window: 1 KiB/s. */
export const DEFAULT_MIN_RATE = 1024;

/** Largest PEP 740 attestations body (or form field) a mechanism reads: 1 MiB. */
export const DEFAULT_ATTESTATIONS_MAX_BYTES = 1024 * 1024;

/** How much of an unwanted request body is read and discarded so the client sees the answer (see `answerAfterBody`). */
export interface LingerBudget {
  readonly bytes: number;
  readonly ms: number;
}

/** Up to 1 MiB, for up to 2 s. */
export const DEFAULT_LINGER: LingerBudget = { bytes: 1024 * 1024, ms: 2000 };
