// The shared mechanism conformance suite, run exactly as a third party would run it, once per
// interop version (each registration serves one identifier).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { mechanismConformance, type ClientHalf } from '@pep694/server/testing';
import { uploadResumable } from './client.js';
import plugin from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'resumable-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const client: ClientHalf = async ({ instructions, body, size, authorization, signal, agent }) => {
  await uploadResumable({
    instructions,
    body,
    size,
    authorization: authorization ?? '',
    retryDelays: [0, 200],
    ...(signal ? { signal } : {}),
    ...(agent ? { agent } : {}),
  });
};

for (const version of [6, 8] as const) {
  mechanismConformance({
    plugin,
    options: { operator: 'conformance', directory: join(dir, `v${version}`), interopVersions: [version], maxFileSize: 1024 ** 3 },
    declines: [{ size: 2 * 1024 ** 3 }],
    config: { limits: { maxFileSize: 4 * 1024 ** 3 } },
    client,
  });
}
