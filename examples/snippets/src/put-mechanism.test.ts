// The tutorial's PUT mechanism, run through the shared conformance suite as its author would.
import { mechanismConformance } from '@pep694/server/testing';
import plugin, { uploadPut } from './put-plugin.js';

mechanismConformance({
  plugin,
  options: { operator: 'acme' },
  client: ({ instructions, body, size, authorization, signal, agent }) =>
    uploadPut({ instructions, body, size, authorization, ...(signal ? { signal } : {}), ...(agent ? { agent } : {}) }),
});
