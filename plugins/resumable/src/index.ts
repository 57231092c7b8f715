/**
 * @pep694/mechanism-resumable: the IETF "Resumable Uploads for HTTP" draft as PEP 694 file upload
 * mechanisms, `vnd-<operator>-resumable-i6` (draft -05, interop version 6, which tus-js-client 4
 * speaks as `protocol: 'ietf-draft-05'`) and `vnd-<operator>-resumable-i8` (the working copy,
 * interop version 8), from one implementation, as a plugin for a `@pep694/core` host.
 *
 * ```ts
 * import resumable from '@pep694/mechanism-resumable';
 * await createServer({
 *   config,
 *   mechanisms: [{ plugin: resumable, options: { operator: 'acme', directory: '/var/lib/pep694/resumable' } }],
 * });
 * ```
 *
 * The client half is `@pep694/mechanism-resumable/client`.
 */
import { definePlugin, MECHANISM, MECHANISM_HOST } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { ResumableMechanism } from './mechanism.js';
import { ResumableOptionsSchema, type ResumableOptions } from './options.js';

export { ResumableMechanism, resumableIdentifier, type ResumableInstructions } from './mechanism.js';
export {
  DEFAULT_APPEND_DRAIN_TIMEOUT,
  INTEROP_VERSIONS,
  ResumableOptionsSchema,
  type InteropVersion,
  type ResumableOptions,
  type ResumableOptionsInput,
} from './options.js';
export { PARTIAL_UPLOAD } from './routes.js';
export { lockWithin, ProcessLocks, type ReleaseLock, type UploadLock } from './lock.js';
/** The type of the `linger` option (see `answerAfterBody` in `@pep694/core/node-http`). */
export type { LingerBudget } from '@pep694/core';

export const PLUGIN_NAME = '@pep694/mechanism-resumable';

export default definePlugin<ResumableOptions>({
  name: PLUGIN_NAME,
  coreRange: '^0.1.0',
  options: ResumableOptionsSchema,
  register(container, options) {
    // One mechanism per interop version, in the order given (the host's preference order).
    for (const version of options.interopVersions) {
      container.register(MECHANISM, {
        useFactory: instanceCachingFactory((c) => new ResumableMechanism(c.resolve(MECHANISM_HOST), options, version)),
      });
    }
  },
});
