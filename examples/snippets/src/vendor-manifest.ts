// The manifest in "Write your own mechanism" (examples/vendor-mechanism/README.md): src/index.ts.
import { definePlugin, MECHANISM, MECHANISM_HOST, vendorIdentifier } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { HttpFetchMechanism, HttpFetchOptionsSchema, type HttpFetchPluginOptions } from '@example/mechanism-http-fetch';
// readme:start
export default definePlugin<HttpFetchPluginOptions>({
  name: '@example/mechanism-http-fetch',
  coreRange: '^0.1.0', // checked against the host's core at registration
  options: HttpFetchOptionsSchema, // zod: validates and defaults the operator's options
  register(container, { operator, ...options }) {
    const identifier = vendorIdentifier(operator, 'http-fetch'); // vnd-<operator>-http-fetch
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new HttpFetchMechanism(identifier, c.resolve(MECHANISM_HOST), options)),
    });
  },
});
// readme:end
