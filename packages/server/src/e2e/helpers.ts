/** Shared steps of the end-to-end tests: the real flow over loopback HTTP. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import { api, META, TEST_TOKENS, startTestServer, type TestServerOptions } from '../testing/index.js';

export const FIXTURES = new URL('../../../../../shared/fixtures/', import.meta.url);
export const fixture = (name: string) => readFileSync(new URL(`dist/${name}`, FIXTURES));
export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
export const SDIST = 'demo_pkg-1.0.0.tar.gz';

/** A server with the required mechanism, as every Upload 2.0 server has. */
export function startServer(opts: TestServerOptions = {}) {
  return startTestServer({ mechanisms: [{ plugin: httpPostBytes, options: {} }], ...opts });
}

export async function createSession(url: string, name = 'demo-pkg', version = '1.0.0', token: string = TEST_TOKENS.alice) {
  const res = await api('POST', url, { token, body: { meta: META, name, version } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { links: Record<string, string>; [k: string]: any };
}

export async function createFile(
  session: { links: Record<string, string> },
  filename: string,
  bytes: Uint8Array,
  token: string = TEST_TOKENS.alice,
  hashes?: Record<string, string>,
) {
  const res = await api('POST', session.links.upload!, {
    token,
    body: { meta: META, filename, size: bytes.length, hashes: hashes ?? { sha256: sha256(bytes) }, mechanism: 'http-post-bytes' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body as {
    links: Record<string, string>;
    mechanism: { file_url: string; [k: string]: unknown };
    status: string;
    [k: string]: any;
  };
}

export async function postBytes(fileSession: { mechanism: { file_url: string } }, bytes: Uint8Array, token: string = TEST_TOKENS.alice) {
  const res = await fetch(fileSession.mechanism.file_url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  await res.arrayBuffer();
  return res.status;
}

/** Create, transfer and complete one file; returns the file upload session body after completion. */
export async function uploadFile(
  session: { links: Record<string, string> },
  filename: string,
  bytes: Uint8Array,
  token: string = TEST_TOKENS.alice,
) {
  const file = await createFile(session, filename, bytes, token);
  expect(await postBytes(file, bytes, token)).toBeLessThan(300);
  const done = await api('POST', file.links.complete!, { token, body: { meta: META } });
  expect(done.status, JSON.stringify(done.body)).toBe(201);
  return done.body as { links: Record<string, string>; status: string; [k: string]: any };
}

export { api, META, TEST_TOKENS };
