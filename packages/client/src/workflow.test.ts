/**
 * The library workflow (`uploadRelease`, `publishFlow`) against the server's test harness on
 * loopback: extension before `expires-at`, PEP 740 attestation files sent with the file, the
 * state's record of a file on disk before its first byte (its journal), a third party's half named in config,
 * releases split by name and version.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import multipart from '@pep694/mechanism-multipart';
import { SMALL_FILE, type MechanismClient } from '@pep694/core/node-http';
import { attestation, startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';
import { SessionApi } from './api.js';
import { collectReleases, sha256File } from './dists.js';
import { publishFlow } from './publish-flow.js';
import { FIRST_PARTY_HALVES } from './halves.js';
import { StateStore, type FileState } from './state.js';
import { FIXTURES, runCli } from './test-support.js';
import { uploadRelease, type UploadEvent } from './upload.js';

let t: TestServer;
let dir: string;
const auth = `Bearer ${TEST_TOKENS.alice}`;
/** A first release's session reserves the name for its version only: each test cancels what it staged. */
const cancel = async (url: string) => {
  const res = await fetch(url, { method: 'DELETE', headers: { Authorization: auth } });
  expect(res.status).toBe(204);
};

beforeAll(async () => {
  t = await startTestServer({
    mechanisms: [
      { plugin: httpPostBytes, options: {} },
      { plugin: multipart, options: { operator: 'test' } },
    ],
    // A short-lived session, so that the client has to extend it.
    config: { sessionTtl: 120 },
  });
  dir = mkdtempSync(join(tmpdir(), 'pep694-workflow-'));
});
afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('uploadRelease', () => {
  it('extends the session when less than extendBefore seconds are left (PEP 694 "Session Management")', async () => {
    const [release] = await collectReleases([join(FIXTURES, 'demo_pkg-1.0.0.tar.gz')]);
    const events: UploadEvent[] = [];
    const result = await uploadRelease({
      root: t.url,
      authorization: auth,
      release: release!,
      stage: true,
      extendBefore: 600,
      onEvent: (e) => events.push(e),
    });
    const created = events.find((e) => e.type === 'session');
    const extended = events.find((e) => e.type === 'extended');
    expect(created?.type === 'session' && created.session['expires-at']).toBeTruthy();
    expect(extended).toBeDefined();
    if (created?.type === 'session' && extended?.type === 'extended') {
      expect(Date.parse(extended.expiresAt)).toBeGreaterThan(Date.parse(created.session['expires-at']));
    }
    expect(result.status).toBe('staged');
    await cancel(result.sessionUrl);
  });

  it('sends the <dist>.<anything>.attestation files next to a dist with it, through each mechanism that takes them', async () => {
    for (const mechanism of ['http-post-bytes', 'vnd-test-multipart']) {
      const sub = join(dir, mechanism);
      mkdirSync(sub);
      const wheel = join(sub, 'demo_pkg-1.0.1-py3-none-any.whl');
      copyFileSync(join(FIXTURES, 'demo_pkg-1.0.1-py3-none-any.whl'), wheel);
      const sha = await sha256File(wheel);
      writeFileSync(`${wheel}.publish.attestation`, JSON.stringify(attestation('demo_pkg-1.0.1-py3-none-any.whl', sha)));
      const [release] = await collectReleases([wheel, `${wheel}.publish.attestation`]);
      expect(release!.dists).toHaveLength(1);
      const result = await uploadRelease({ root: t.url, authorization: auth, release: release!, stage: true, mechanism });
      expect(result.files[0]).toMatchObject({ status: 'completed', mechanism, attestations: 1 });
      await cancel(result.sessionUrl);
    }
  });

  it('keeps local state: a second run for the same release joins the session and skips what is completed', async () => {
    const state = new StateStore(join(dir, 'cache'));
    const [release] = await collectReleases([join(FIXTURES, 'demo_pkg_extra-0.1.0.tar.gz')]);
    const first = await uploadRelease({ root: t.url, authorization: auth, release: release!, stage: true, state });
    const second = await uploadRelease({ root: t.url, authorization: auth, release: release!, stage: true, state });
    expect(second.joined).toBe(true);
    expect(second.sessionUrl).toBe(first.sessionUrl);
    expect(second.localId).toBe(first.localId);
    expect(second.files[0]).toMatchObject({ status: 'skipped', bytesSent: 0 });
    expect(state.get(first.localId!)?.files['demo_pkg_extra-0.1.0.tar.gz']?.sha256).toBe(second.files[0]!.sha256);
    await cancel(first.sessionUrl);
  });
});

describe("the state's record of each file upload session", () => {
  it('is on disk before the first byte of a file, small or large: a half sees it there', async () => {
    const cacheDir = join(dir, 'recorded-first');
    const small = join(FIXTURES, 'demo_pkg-1.0.0.tar.gz');
    const large = join(dir, 'demo_large-2.0.tar.gz');
    writeFileSync(large, randomBytes(SMALL_FILE + 1));
    for (const path of [small, large]) {
      const [release] = await collectReleases([path]);
      const filename = release!.dists[0]!.filename;
      /** What a fresh reader (a re-run) finds on disk for the file when the half starts its transfer. */
      let onDisk: FileState | undefined;
      const looking: MechanismClient[] = FIRST_PARTY_HALVES.map((half) => ({
        ...half,
        upload: (ctx) => {
          onDisk = new StateStore(cacheDir).list().find((r) => r.files[filename])?.files[filename];
          return half.upload(ctx);
        },
      }));
      const state = new StateStore(cacheDir);
      const result = await uploadRelease({ root: t.url, authorization: auth, release: release!, stage: true, state, halves: looking });
      expect(onDisk).toMatchObject({ sha256: result.files[0]!.sha256, mechanism: 'http-post-bytes' });
      expect(onDisk?.fileSessionUrl).toMatch(/^http/);
      // Once the files are done the record holds them whole, and the journal is gone.
      const id = result.localId!;
      expect(JSON.parse(readFileSync(join(cacheDir, 'sessions', `${id}.json`), 'utf8')).files[filename]).toEqual(onDisk);
      expect(existsSync(join(cacheDir, 'sessions', `${id}.log`))).toBe(false);
      await cancel(result.sessionUrl);
    }
  });

  it('a killed run leaves its journal: a read replays it over the record, a last line cut short ignored', () => {
    const cacheDir = join(dir, 'journal');
    const state = new StateStore(cacheDir);
    const record = state.open({ root: 'http://i/', name: 'demo-pkg', version: '1.0', sessionUrl: 'http://i/s/1', status: 'open' }, true);
    const fs = (n: number): FileState => ({ fileSessionUrl: `http://i/f/${n}`, sha256: String(n).repeat(64), size: n, mechanism: 'tus' });
    state.recordFile(record, 'a.whl', fs(1));
    state.recordFile(record, 'b.whl', fs(2));
    state.recordFile(record, 'a.whl', undefined); // deleted, and sent again:
    state.recordFile(record, 'c.whl', fs(3));
    state.recordFile(record, 'c.whl', { ...fs(3), resumeState: { offset: 5 } });
    // No close, no compaction: as a SIGKILL leaves it, with a last line cut short.
    state.closeJournal(record.id);
    appendFileSync(join(cacheDir, 'sessions', `${record.id}.log`), '{"file":"d.whl","sta');
    const again = new StateStore(cacheDir);
    const expected = { 'b.whl': fs(2), 'c.whl': { ...fs(3), resumeState: { offset: 5 } } };
    expect(again.get(record.id)?.files).toEqual(expected);
    expect(again.list().find((r) => r.id === record.id)?.files).toEqual(expected);
    // The record file itself still has none of them (only the journal does).
    expect(JSON.parse(readFileSync(join(cacheDir, 'sessions', `${record.id}.json`), 'utf8')).files).toEqual({});
    // The re-run's own changes start on a line of their own, after the one cut short.
    const rerun = again.get(record.id)!;
    again.recordFile(rerun, 'e.whl', fs(5));
    expect(new StateStore(cacheDir).get(record.id)?.files).toEqual({ ...expected, 'e.whl': fs(5) });
    again.remove(record.id);
    expect(existsSync(join(cacheDir, 'sessions', `${record.id}.log`))).toBe(false);
  });
});

describe('joining a session others contribute to (PEP 694 "Multiple Session Creation Requests")', () => {
  it('leaves another client’s pending upload alone instead of deleting it', async () => {
    const [release] = await collectReleases([join(FIXTURES, 'demo_pkg-1.0.0.tar.gz')]);
    const dist = release!.dists[0]!;
    // Another client: creates the session and a file upload session, and has not sent the bytes yet.
    const api = new SessionApi({ authorization: auth });
    const { session } = await api.createOrJoin(t.url, 'demo-pkg', '1.0.0');
    const theirs = await api.createFile(session, {
      filename: dist.filename,
      size: dist.size,
      hashes: { sha256: await sha256File(dist.path) },
      mechanism: 'http-post-bytes',
    });
    await expect(
      uploadRelease({ root: t.url, authorization: auth, release: release!, stage: true, state: new StateStore(join(dir, 'other-cache')) }),
    ).rejects.toThrow(/being uploaded to this session by another client/);
    expect((await api.fileStatus(theirs.body.links['file-upload-session'])).body.status).toBe('pending');
    await cancel(session.links.session);
  });
});

describe('a record of a file that cannot be written', () => {
  it('deletes the file upload session it was for, so that a re-run is not stopped by it', async () => {
    const [release] = await collectReleases([join(FIXTURES, 'demo_pkg_extra-0.1.0-py3-none-any.whl')]);
    const filename = release!.dists[0]!.filename;
    const cacheDir = join(dir, 'unwritable');
    /** The disk full (or the cache directory gone) when the file's record is written. */
    class FailingStore extends StateStore {
      override recordFile(...args: Parameters<StateStore['recordFile']>): void {
        if (args[2] !== undefined) throw new Error('ENOSPC: no space left on device, write');
        super.recordFile(...args);
      }
    }
    await expect(
      uploadRelease({ root: t.url, authorization: auth, release: release!, stage: true, state: new FailingStore(cacheDir) }),
    ).rejects.toThrow(`recording ${filename} in the local state (the cache directory) failed: ENOSPC`);
    // The re-run (the disk has room again) joins the session and uploads the file.
    const again = await uploadRelease({
      root: t.url,
      authorization: auth,
      release: release!,
      stage: true,
      state: new StateStore(cacheDir),
    });
    expect(again.joined).toBe(true);
    expect(again.files[0]).toMatchObject({ filename, status: 'completed' });
    await cancel(again.sessionUrl);
  });
});

describe('publishFlow', () => {
  it('uploads each name and version through its own publishing session (PEP 694 "Multiple Sessions")', async () => {
    const results = await publishFlow({
      url: t.url,
      credentials: { token: TEST_TOKENS.alice },
      dists: [
        join(FIXTURES, 'demo_pkg-1.0.1.tar.gz'),
        join(FIXTURES, 'demo_pkg_extra-0.1.0-py3-none-any.whl'),
        join(FIXTURES, 'demo_pkg-1.0.1-py3-none-any.whl'),
      ],
      stage: true,
    });
    expect(results.map((r) => [r.name, r.version, r.files.length])).toEqual([
      ['demo-pkg', '1.0.1', 2],
      ['demo-pkg-extra', '0.1.0', 1],
    ]);
    for (const r of results) if (r.protocol === '2') await cancel(r.sessionUrl);
  });
});

describe('third-party client halves', () => {
  it('uses a half named by package in the config (pep694.json "halves"), ahead of the first-party one for the same mechanism', async () => {
    // A package "@acme/pep694-half" installed beside the config, exporting a MechanismClient from ./client.
    const root = join(dir, 'third-party');
    const pkg = join(root, 'node_modules', '@acme', 'pep694-half');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: '@acme/pep694-half', type: 'module', exports: { './client': './client.js' } }),
    );
    const marker = join(root, 'used');
    writeFileSync(
      join(pkg, 'client.js'),
      `import { readFile, writeFile } from 'node:fs/promises';
export default {
  name: '@acme/pep694-half',
  matches: (id) => id === 'http-post-bytes',
  async upload(ctx) {
    const body = await readFile(ctx.body);
    const res = await fetch(ctx.instructions.file_url, { method: 'POST', headers: { Authorization: ctx.authorization, 'Content-Type': 'application/octet-stream' }, body });
    if (!res.ok) throw new Error('refused: ' + res.status);
    await writeFile(${JSON.stringify(marker)}, ctx.filename);
    return { bytesSent: body.length };
  },
};
`,
    );
    writeFileSync(join(root, 'pep694.json'), JSON.stringify({ halves: ['@acme/pep694-half'] }));
    const r = await runCli(
      [
        'upload',
        '--repository-url',
        t.url,
        '--stage',
        '--config',
        join(root, 'pep694.json'),
        join(FIXTURES, 'demo_pkg_extra-0.1.0-py3-none-any.whl'),
      ],
      {
        PEP694_TOKEN: TEST_TOKENS.alice,
        PEP694_CACHE_DIR: join(root, 'cache'),
      },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/demo_pkg_extra-0\.1\.0-py3-none-any\.whl: completed/);
    expect(readFileSync(marker, 'utf8')).toBe('demo_pkg_extra-0.1.0-py3-none-any.whl');
  });
});
