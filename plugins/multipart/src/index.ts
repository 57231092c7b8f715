/**
 * @pep694/mechanism-multipart: a server specific file upload mechanism (PEP 694 "Server Specific
 * File Upload Mechanisms"), `vnd-<operator>-multipart`: one `multipart/form-data` POST with the
 * file in a part named `content`, as HTML forms, `FormData` and `curl -F` send it. A plugin for a
 * `@pep694/core` host.
 *
 * ```ts
 * import multipart from '@pep694/mechanism-multipart';
 * await createServer({ config, mechanisms: [{ plugin: multipart, options: { operator: 'acme' } }] });
 * ```
 *
 * The client half is `@pep694/mechanism-multipart/client`.
 */
import { definePlugin, MECHANISM, MECHANISM_HOST, OPERATOR_SEGMENT, vendorIdentifier } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';
import { MultipartMechanism, type MultipartOptions } from './mechanism.js';

export { MultipartMechanism, type MultipartInstructions, type MultipartOptions } from './mechanism.js';
export { CorsPolicy, type CorsOptions } from './cors.js';
export { ATTESTATIONS_FIELD, FILE_FIELD, FORM_LIMITS, FORM_OVERHEAD } from './form.js';

export const PLUGIN_NAME = '@pep694/mechanism-multipart';
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

/** Every option, with its default. Unknown keys are refused, so a typo fails at startup. */
export const MultipartOptionsSchema = z
  .strictObject({
    /**
     * The operator segment of the identifier, `[a-z0-9]+` (PEP 694: it "SHOULD clearly identify the
     * server operator"). Required: `{ operator: 'acme' }` serves `vnd-acme-multipart`.
     */
    operator: z.string({ error: 'operator is required: the index operator segment of vnd-<operator>-multipart, [a-z0-9]+' }).regex(OPERATOR_SEGMENT, {
      error: 'operator must contain only [a-z0-9] (PEP 694 "Server Specific File Upload Mechanisms")',
    }),
    /** Accept a PEP 740 `attestations` field (stored with the file, not verified). */
    attestations: z.boolean().default(true),
    /** Largest `attestations` field value, in bytes (413 `body-too-large` beyond). */
    attestationsMaxBytes: z.number().int().positive().default(1024 * 1024),
    /** Decline files larger than this at negotiation (422 `mechanism-declined`). Unset: every size the host accepts. */
    maxFileSize: z.number().int().nonnegative().optional(),
    /** Stop a transfer when no bytes arrive for this many milliseconds (408, nothing stored); 0 disables it. */
    idleTimeout: z.number().int().nonnegative().default(120_000),
    /** Stop a transfer that averages fewer bytes/s than this over an `idleTimeout` window (408, nothing stored); 0 disables it. */
    minRate: z.number().int().nonnegative().default(1024),
    /** Browser access from other origins (CORS); off when absent. */
    cors: CorsOptionsSchema.optional(),
  })
  .transform(({ operator, ...rest }): MultipartOptions => ({ identifier: vendorIdentifier(operator, IMPLEMENTATION), ...rest }));
export type MultipartOptionsInput = z.input<typeof MultipartOptionsSchema>;

export default definePlugin<MultipartOptions>({
  name: PLUGIN_NAME,
  coreRange: '^0.1.0',
  options: MultipartOptionsSchema,
  register(container, options) {
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new MultipartMechanism(c.resolve(MECHANISM_HOST), options)),
    });
  },
});
