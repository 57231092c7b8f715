// The same suite every first-party mechanism runs, one call, from a third party's package. The
// client half serves the bytes from a one-off HTTP server on 127.0.0.1 and gives the index its URL;
// loopback is allowed here explicitly (the defaults refuse it).
import { mechanismConformance } from '@pep694/server/testing';
import { serveAndRequestFetch } from './client.js';
import plugin from './index.js';

mechanismConformance({
  plugin,
  options: {
    operator: 'example',
    allowHosts: ['127.0.0.1:*'],
    allowAddresses: ['127.0.0.1/32'],
    schemes: ['http'],
    maxFileSize: 1024 ** 3,
  },
  declines: [{ size: 1024 ** 3 + 1 }],
  config: { limits: { maxFileSize: 4 * 1024 ** 3 } },
  client: async ({ instructions, body, authorization, signal, agent }) => {
    await serveAndRequestFetch({ instructions, body, authorization, ...(signal ? { signal } : {}), ...(agent ? { agent } : {}) });
  },
});
