// The same suite every first-party mechanism runs, one call, from a third party's package.
import { mechanismConformance } from '@pep694/server/testing';
import { uploadChunked } from './client.js';
import plugin from './index.js';

mechanismConformance({
  plugin,
  options: { operator: 'example', chunkSize: 256 * 1024 },
  declines: [{ size: 256 * 1024 * 100_001 }],
  config: { limits: { maxFileSize: 64 * 1024 ** 3 } },
  client: ({ instructions, body, authorization, signal, agent }) =>
    uploadChunked({ instructions, body, authorization, ...(signal ? { signal } : {}), ...(agent ? { agent } : {}) }),
});
