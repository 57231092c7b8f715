/**
 * The plugin manifest of `@example/mechanism-chunked`: what an operator registers.
 *
 *   createServer({ mechanisms: [{ plugin: chunked, options: { operator: 'acme' } }] })
 *   // advertises vnd-acme-chunked-v1
 */
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';
import { definePlugin, MECHANISM, MECHANISM_HOST, vendorIdentifier } from '@pep694/core';
import { ChunkedMechanism } from './mechanism.js';

export { ChunkedMechanism } from './mechanism.js';

export default definePlugin({
  name: '@example/mechanism-chunked',
  coreRange: '^0.1.0',
  options: z.strictObject({
    /** Names the index that serves the mechanism: `vnd-<operator>-chunked-v1`. */
    operator: z.string().regex(/^[a-z0-9]+$/, 'the operator segment is [a-z0-9]+'),
    /** Largest chunk a client may send. */
    chunkSize: z.number().int().min(1024).max(64 * 1024 ** 2).default(8 * 1024 ** 2),
  }),
  register(container, { operator, chunkSize }) {
    const identifier = vendorIdentifier(operator, 'chunked-v1');
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new ChunkedMechanism(identifier, c.resolve(MECHANISM_HOST), { chunkSize })),
    });
  },
});
