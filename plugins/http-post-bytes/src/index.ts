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
import { HttpPostBytesMechanism } from './mechanism.js';
import { HttpPostBytesOptionsSchema, type HttpPostBytesOptions } from './options.js';

export { HttpPostBytesMechanism } from './mechanism.js';
export { HttpPostBytesOptionsSchema, type HttpPostBytesOptions, type HttpPostBytesOptionsInput } from './options.js';

export const PLUGIN_NAME = '@pep694/mechanism-http-post-bytes';

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
