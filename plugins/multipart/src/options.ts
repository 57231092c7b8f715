/**
 * The options of the multipart mechanism: one zod schema, with every default; the types the
 * mechanism and its CORS policy take are what it parses to. Unknown keys are refused, so a typo
 * fails at startup.
 */
import {
  DEFAULT_ATTESTATIONS_MAX_BYTES,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MIN_RATE,
  LingerBudgetSchema,
  OPERATOR_SEGMENT,
  vendorIdentifier,
} from '@pep694/core';
import { z } from 'zod';

/** The implementation segment of the identifier: `vnd-<operator>-multipart`. */
export const IMPLEMENTATION = 'multipart';

/** An origin exactly as browsers send it in `Origin`: scheme, host and port only (`https://pypi.example.org`). */
const OriginSchema = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === s;
    } catch {
      return false;
    }
  },
  { error: 'an origin is scheme://host[:port] with no path or trailing slash, e.g. https://pypi.example.org' },
);

/** Browser access (CORS). Absent: off, and only the index's own pages may POST the form. */
export const CorsOptionsSchema = z
  .strictObject({
    /** Origins allowed to call `file_url` from a page, or `'*'` for any. */
    origins: z.union([z.literal('*'), z.array(OriginSchema).min(1, 'list at least one origin, or leave cors out')]),
    /** Send `Access-Control-Allow-Credentials: true` (pages using `credentials: 'include'`); not with `'*'`. */
    credentials: z.boolean().default(false),
    /** `Access-Control-Max-Age` of preflight answers, in seconds. */
    maxAge: z.number().int().nonnegative().default(600),
  })
  .refine((c) => !(c.origins === '*' && c.credentials), {
    error: "credentials cannot be allowed for every origin ('*'): list the origins",
    path: ['credentials'],
  });

/** The parsed `cors` option. */
export type CorsOptions = z.output<typeof CorsOptionsSchema>;

export const MultipartOptionsSchema = z
  .strictObject({
    /**
     * The operator segment of the identifier, `[a-z0-9]+` (PEP 694: it "SHOULD clearly identify the
     * server operator"). Required: `{ operator: 'acme' }` serves `vnd-acme-multipart`.
     */
    operator: z
      .string({ error: 'operator is required: the index operator segment of vnd-<operator>-multipart, [a-z0-9]+' })
      .regex(OPERATOR_SEGMENT, {
        error: 'operator must contain only [a-z0-9] (PEP 694 "Server Specific File Upload Mechanisms")',
      }),
    /** Accept a PEP 740 `attestations` field (verified by the host's AttestationVerifier, when it has one, and stored with the file). */
    attestations: z.boolean().default(true),
    /** Largest `attestations` field value, in bytes (413 `body-too-large` beyond). */
    attestationsMaxBytes: z.number().int().positive().default(DEFAULT_ATTESTATIONS_MAX_BYTES),
    /** Decline files larger than this at negotiation (422 `mechanism-declined`). Unset: every size the host accepts. */
    maxFileSize: z.number().int().nonnegative().optional(),
    /** Stop a transfer when no bytes arrive for this many milliseconds (408, nothing stored); 0 disables it. */
    idleTimeout: z.number().int().nonnegative().default(DEFAULT_IDLE_TIMEOUT),
    /** Stop a transfer that averages fewer bytes/s than this over an `idleTimeout` window (408, nothing stored); 0 disables it. */
    minRate: z.number().int().nonnegative().default(DEFAULT_MIN_RATE),
    /** How much of a refused request's body is read before the answer (`{ bytes, ms }`; see `answerAfterBody`). */
    linger: LingerBudgetSchema,
    /** Browser access from other origins (CORS); off when absent. */
    cors: CorsOptionsSchema.optional(),
  })
  // The mechanism takes its identifier, built (and checked) from the operator once, here.
  .transform(({ operator, ...rest }) => ({ identifier: vendorIdentifier(operator, IMPLEMENTATION), ...rest }));

/** What an operator passes (`operator` required). */
export type MultipartOptionsInput = z.input<typeof MultipartOptionsSchema>;
/** The parsed options the mechanism takes: build them with `MultipartOptionsSchema.parse(...)`. */
export type MultipartOptions = z.output<typeof MultipartOptionsSchema>;
