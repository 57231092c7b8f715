/**
 * A plugin installed with its own physical copy of `@pep694/core` (a tarball, a copied folder, a
 * second node_modules) throws ProblemErrors of a different class than the host's. The host must
 * still answer them as the mechanism's own problems (4xx), not as 500 internal-error; and a plugin
 * built against a core range the host does not satisfy is refused at startup, naming both versions.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORE_VERSION, ProblemError, UPLOAD_V2_JSON, type MechanismPlugin } from '@pep694/core';
import { startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';

const ROOT = new URL('../../../', import.meta.url).pathname;
const META = { 'api-version': '2.0' };

/**
 * Copies a workspace package's `dist` and package.json to `<into>/node_modules/<name>`, with its
 * dependencies linked from where the workspace installed them (the copy is what must differ).
 */
function copyPackage(into: string, from: string): string {
  const manifest = JSON.parse(readFileSync(join(ROOT, from, 'package.json'), 'utf8')) as {
    name: string;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  const target = join(into, 'node_modules', manifest.name);
  mkdirSync(target, { recursive: true });
  cpSync(join(ROOT, from, 'dist'), join(target, 'dist'), { recursive: true });
  cpSync(join(ROOT, from, 'package.json'), join(target, 'package.json'));
  for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
    if (dep.startsWith('@pep694/')) continue; // resolved from <into>/node_modules: the copy
    const link = join(target, 'node_modules', dep);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(realpathSync(join(ROOT, from, 'node_modules', dep)), link);
  }
  return target;
}

let tmp: string;
let plugin: MechanismPlugin<unknown>;
let secondCore: { ProblemError: typeof ProblemError };
let srv: TestServer;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'pep694-second-core-'));
  const core = copyPackage(tmp, 'packages/core');
  const mechanism = copyPackage(tmp, 'plugins/http-post-bytes');
  secondCore = (await import(pathToFileURL(join(core, 'dist/index.js')).href)) as typeof secondCore;
  plugin = ((await import(pathToFileURL(join(mechanism, 'dist/index.js')).href)) as { default: MechanismPlugin<unknown> }).default;
  srv = await startTestServer({ mechanisms: [{ plugin, options: {} }] });
});
afterAll(async () => {
  await srv?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${TEST_TOKENS.alice}`, Accept: UPLOAD_V2_JSON, 'Content-Type': UPLOAD_V2_JSON },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function fileUrl(filename: string, size: number): Promise<string> {
  const session = await call('POST', srv.url, { meta: META, name: 'demo-pkg', version: '1.0.0' });
  expect(session.status).toBe(201);
  const file = await call('POST', session.body.links.upload, {
    meta: META,
    filename,
    size,
    hashes: { sha256: '0'.repeat(64) },
    mechanism: 'http-post-bytes',
  });
  expect(file.status, JSON.stringify(file.body)).toBe(202);
  return file.body.mechanism.file_url as string;
}

describe('a mechanism loaded through a second physical copy of @pep694/core', () => {
  it('really runs on another copy: its ProblemError is another class, recognised by the brand', () => {
    expect(secondCore.ProblemError).not.toBe(ProblemError);
    const foreign = new secondCore.ProblemError('unsupported-media-type', 'from the other copy');
    expect(ProblemError.is(foreign)).toBe(true);
    expect(foreign instanceof ProblemError).toBe(true);
    expect(ProblemError.is(new Error('plain'))).toBe(false);
    expect(ProblemError.is({ code: 'not-found', status: 404 })).toBe(false);
  });

  it("answers the mechanism's own refusals with their 4xx problem, not 500", async () => {
    const url = await fileUrl('demo_pkg-1.0.0-py3-none-any.whl', 10);
    const post = (type: string, body: string) =>
      fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${TEST_TOKENS.alice}`, 'Content-Type': type }, body }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
      );
    const wrongType = await post('application/zip', '0123456789');
    expect(wrongType).toMatchObject({ status: 415, body: { code: 'unsupported-media-type' } });
    const short = await post('application/octet-stream', '0123');
    expect(short).toMatchObject({ status: 400, body: { code: 'malformed-upload' } });
    const tooLong = await post('application/octet-stream', '0123456789abc');
    expect(tooLong).toMatchObject({ status: 413, body: { code: 'payload-too-large' } });
  });
});

describe('a plugin built against a core range the host does not satisfy', () => {
  it('is refused at startup with a message naming both versions', async () => {
    const incompatible = { ...plugin, name: '@acme/mechanism-future', coreRange: '^9.0.0' };
    await expect(startTestServer({ mechanisms: [{ plugin: incompatible, options: {} }] })).rejects.toThrow(
      `@acme/mechanism-future supports @pep694/core ^9.0.0, but this host runs ${CORE_VERSION}`,
    );
  });
});
