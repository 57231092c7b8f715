/**
 * @pep694/mechanism-http-post-bytes: the one file upload mechanism every Upload 2.0 server MUST
 * support (PEP 694 "Required File Upload Mechanisms"), as a plugin for a `@pep694/core` host.
 *
 * ```ts
 * import httpPostBytes from '@pep694/mechanism-http-post-bytes';
 * await createServer({ config, mechanisms: [{ plugin: httpPostBytes, options: { attestations: true } }] });
 * ```
 *
 * The client half is `@pep694/mechanism-http-post-bytes/client`.
 */
import { definePlugin, MECHANISM, MECHANISM_HOST } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';
import { HttpPostBytesMechanism, type HttpPostBytesOptions } from './mechanism.js';

export { HttpPostBytesMechanism, type HttpPostBytesOptions } from './mechanism.js';

export const PLUGIN_NAME = '@pep694/mechanism-http-post-bytes';

/** Every option, with its default. Unknown keys are refused, so a typo fails at startup. */
export const HttpPostBytesOptionsSchema = z.strictObject({
  /** Offer `attestations_url` and accept PEP 740 attestation objects (stored with the file, not verified). */
  attestations: z.boolean().default(true),
  /** Largest attestations request body, in bytes (413 `body-too-large` beyond). */
  attestationsMaxBytes: z.number().int().positive().default(1024 * 1024),
  /**
   * Decline files larger than this at negotiation (422 `mechanism-declined`), e.g. to steer big
   * files to a resumable mechanism. Unset: every size the host accepts.
   */
  maxFileSize: z.number().int().nonnegative().optional(),
  /**
   * Stop a transfer when no bytes arrive for this many milliseconds (408 `request-timeout`, nothing
   * stored), so a stalled client does not hold the file's one transfer slot; 0 disables it.
   */
  idleTimeout: z.number().int().nonnegative().default(120_000),
  /**
   * Stop a transfer that averages fewer bytes per second than this over an `idleTimeout` window
   * (408 `request-timeout`, nothing stored), so a client trickling bytes cannot pin a connection
   * until the host's request timeout; 0 disables it.
   */
  minRate: z.number().int().nonnegative().default(1024),
});
export type HttpPostBytesOptionsInput = z.input<typeof HttpPostBytesOptionsSchema>;

export default definePlugin<HttpPostBytesOptions>({
  name: PLUGIN_NAME,
  coreRange: '^0.1.0',
  options: HttpPostBytesOptionsSchema,
  register(container, options) {
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new HttpPostBytesMechanism(c.resolve(MECHANISM_HOST), options)),
    });
  },
});
