/**
 * The plugin manifest of `@example/mechanism-chunked`: what an operator registers.
 *
 *   createServer({ mechanisms: [{ plugin: chunked, options: { operator: 'acme' } }] })
 *   // advertises vnd-acme-chunked-v1
 */
import { instanceCachingFactory } from 'tsyringe';
import { definePlugin, MECHANISM, MECHANISM_HOST, vendorIdentifier } from '@pep694/core';
import { ChunkedMechanism } from './mechanism.js';
import { ChunkedOptionsSchema, type ChunkedPluginOptions } from './options.js';

export { ChunkedMechanism, type ChunkedOptions } from './mechanism.js';
export { ChunkedOptionsSchema, type ChunkedOptionsInput, type ChunkedPluginOptions } from './options.js';

export default definePlugin<ChunkedPluginOptions>({
  name: '@example/mechanism-chunked',
  coreRange: '^0.1.0',
  options: ChunkedOptionsSchema,
  register(container, { operator, chunkSize }) {
    const identifier = vendorIdentifier(operator, 'chunked-v1');
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new ChunkedMechanism(identifier, c.resolve(MECHANISM_HOST), { chunkSize })),
    });
  },
});
