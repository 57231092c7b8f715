// The shared mechanism conformance suite, run exactly as a third party would run it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { mechanismConformance } from '@pep694/server/testing';
import { uploadTus } from './client.js';
import plugin from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'tus-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

mechanismConformance({
  plugin,
  options: { operator: 'conformance', directory: join(dir, 'tus'), maxFileSize: 1024 ** 3 },
  declines: [{ size: 2 * 1024 ** 3 }],
  config: { limits: { maxFileSize: 4 * 1024 ** 3 } },
  client: async ({ instructions, body, size, authorization, signal, agent }) => {
    await uploadTus({
      instructions,
      body,
      size,
      authorization: authorization ?? '',
      retryDelays: [0, 200],
      ...(signal ? { signal } : {}),
      ...(agent ? { agent } : {}),
    });
  },
});
