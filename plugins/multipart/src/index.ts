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
import { definePlugin, MECHANISM, MECHANISM_HOST } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { MultipartMechanism } from './mechanism.js';
import { MultipartOptionsSchema, type MultipartOptions } from './options.js';

export { MultipartMechanism, type MultipartInstructions } from './mechanism.js';
export { CorsPolicy } from './cors.js';
export { ATTESTATIONS_FIELD, FILE_FIELD, FORM_LIMITS, FORM_OVERHEAD } from './form.js';
export {
  CorsOptionsSchema,
  IMPLEMENTATION,
  MultipartOptionsSchema,
  type CorsOptions,
  type MultipartOptions,
  type MultipartOptionsInput,
} from './options.js';

export const PLUGIN_NAME = '@pep694/mechanism-multipart';

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
