// The shared mechanism conformance suite (`@pep694/server/testing`), run exactly as a third party would run it.
import { mechanismConformance } from '@pep694/server/testing';
import { uploadMultipart } from './client.js';
import plugin from './index.js';

mechanismConformance({
  plugin,
  options: { operator: 'conformance', maxFileSize: 1024 ** 3 },
  declines: [{ size: 2 * 1024 ** 3 }],
  config: { limits: { maxFileSize: 4 * 1024 ** 3 } },
  client: ({ instructions, body, size, authorization, signal, agent }) =>
    uploadMultipart({ instructions, body, size, authorization, ...(signal ? { signal } : {}), ...(agent ? { agent } : {}) }),
});
