// The conformance call in "Write your own mechanism" (examples/vendor-mechanism/README.md): src/conformance.test.ts.
import { mechanismConformance } from '@pep694/server/testing';
import plugin from '@example/mechanism-http-fetch';
import { serveAndRequestFetch } from '@example/mechanism-http-fetch/client';
// readme:start
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
// readme:end
