/**
 * The plugin manifest of `@example/mechanism-http-fetch`: what an operator registers.
 *
 *   createServer({ mechanisms: [{ plugin: httpFetch, options: { operator: 'acme', allowHosts: ['files.acme.example'] } }] })
 *   // advertises vnd-acme-http-fetch, and fetches from https://files.acme.example/ only
 */
import { instanceCachingFactory } from 'tsyringe';
import { definePlugin, MECHANISM, MECHANISM_HOST, vendorIdentifier } from '@pep694/core';
import { HttpFetchMechanism } from './mechanism.js';
import { HttpFetchOptionsSchema, type HttpFetchPluginOptions } from './options.js';

export { HttpFetchMechanism, FetchRequestSchema } from './mechanism.js';
export { HttpFetchOptionsSchema, type HttpFetchOptions, type HttpFetchOptionsInput, type HttpFetchPluginOptions } from './options.js';
export {
  GuardedFetcher,
  systemResolver,
  type FetchedResponse,
  type FetcherOptions,
  type ResolvedAddress,
  type Resolver,
} from './fetcher.js';
export {
  FetchPolicy,
  FetchRefused,
  parseAddressRule,
  parseHostRule,
  type FetchPolicyOptions,
  type RefusalKind,
  type Scheme,
} from './policy.js';

export const PLUGIN_NAME = '@example/mechanism-http-fetch';

export default definePlugin<HttpFetchPluginOptions>({
  name: PLUGIN_NAME,
  coreRange: '^0.1.0',
  options: HttpFetchOptionsSchema,
  register(container, { operator, ...options }) {
    const identifier = vendorIdentifier(operator, 'http-fetch');
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new HttpFetchMechanism(identifier, c.resolve(MECHANISM_HOST), options)),
    });
  },
});
