// The shared mechanism conformance suite, run exactly as a third party would run it.
import { mechanismConformance } from '@pep694/server/testing';
import { uploadHttpPostBytes } from './client.js';
import plugin from './index.js';

mechanismConformance({
  plugin,
  options: { maxFileSize: 1024 ** 3 },
  declines: [{ size: 2 * 1024 ** 3 }],
  config: { limits: { maxFileSize: 4 * 1024 ** 3 } },
  client: ({ instructions, body, size, authorization, signal, agent }) =>
    uploadHttpPostBytes({
      instructions,
      body,
      size,
      authorization: authorization ?? '',
      ...(signal ? { signal } : {}),
      ...(agent ? { agent } : {}),
    }),
});
