/**
 * @pep694/mechanism-tus: a resumable PEP 694 file upload mechanism, `vnd-<operator>-tus`, on the
 * tus 1.0 protocol (`@tus/server` + `@tus/file-store`), as a plugin for a `@pep694/core` host.
 *
 * ```ts
 * import tus from '@pep694/mechanism-tus';
 * await createServer({
 *   config,
 *   mechanisms: [{ plugin: tus, options: { operator: 'acme', directory: '/var/lib/pep694/tus' } }],
 * });
 * ```
 *
 * The client half is `@pep694/mechanism-tus/client`.
 */
import { definePlugin, MECHANISM, MECHANISM_HOST, OPERATOR_SEGMENT } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';
import { TusMechanism, type TusOptions } from './mechanism.js';

export { TusMechanism, TUS_EXTENSIONS, type TusInstructions, type TusOptions } from './mechanism.js';
export { canAdopt, type FileAdoption } from './adoption.js';
export { TUS_VERSION } from './http.js';
/** The type of the `linger` option (see `answerAfterBody` in `@pep694/core/node-http`). */
export type { LingerBudget } from '@pep694/core/node-http';

export const PLUGIN_NAME = '@pep694/mechanism-tus';

/** Every option, with its default. Unknown keys are refused, so a typo fails at startup. */
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
  lockDrainTimeout: z.number().int().nonnegative().default(3000),
  /**
   * Close a PATCH's connection when no bytes arrive for this many milliseconds, so a stalled client
   * does not hold it until the host's requestTimeout; the bytes that arrived are kept (the client
   * resumes from HEAD's offset). 0 disables it.
   */
  idleTimeout: z.number().int().nonnegative().default(120_000),
  /** Close a PATCH's connection when it averages fewer bytes per second than this over an `idleTimeout` window (slowloris); 0 disables it. */
  minRate: z.number().int().nonnegative().default(1024),
});
export type TusOptionsInput = z.input<typeof TusOptionsSchema>;

export default definePlugin<TusOptions>({
  name: PLUGIN_NAME,
  coreRange: '^0.1.0',
  options: TusOptionsSchema,
  register(container, options) {
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new TusMechanism(c.resolve(MECHANISM_HOST), options)),
    });
  },
});
