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
import { definePlugin, MECHANISM, MECHANISM_HOST } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { TusMechanism } from './mechanism.js';
import { TusOptionsSchema, type TusOptions } from './options.js';

export { TusMechanism, TUS_EXTENSIONS, type TusInstructions } from './mechanism.js';
export { DEFAULT_LOCK_DRAIN_TIMEOUT, TusOptionsSchema, type TusOptions, type TusOptionsInput } from './options.js';
export { canAdopt, type FileAdoption } from './adoption.js';
export { TUS_VERSION } from './http.js';
/** The type of the `linger` option (see `answerAfterBody` in `@pep694/core/node-http`). */
export type { LingerBudget } from '@pep694/core';

export const PLUGIN_NAME = '@pep694/mechanism-tus';

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
