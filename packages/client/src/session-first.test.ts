/**
 * The order of a release's first steps (`uploadRelease`): the session's request goes out before
 * any file is read, and the first files are hashed while its answer is awaited. A file of up to
 * SMALL_FILE bytes is read with synchronous reads, so hashing it holds the event loop; hashed
 * before the request left, the first files used to delay it (the session's round trip doubled).
 * When the session is not created (refused, or a legacy-only index), the hashing ahead stops.
 * Which files the client opens is seen through `openSync` (node:fs, wrapped for this file only),
 * and when the request has gone out through its 'finish' (node:http's `request`, spied on).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { collectReleases } from './dists.js';
import { uploadRelease } from './upload.js';

const opened = vi.hoisted(() => [] as string[]);
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    openSync: (...args: Parameters<typeof fs.openSync>) => {
      opened.push(String(args[0]));
      return fs.openSync(...args);
    },
  };
});

let dir: string;
let server: Server;
let root: string;
/** The files opened when the session's request had gone out whole, and by the time the index answered it. */
let atSent: string[] | undefined;
let whileHeld: string[] | undefined;
let paths: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pep694-order-'));
  paths = ['demo_order-1.0.tar.gz', ...[1, 2, 3, 4, 5, 6, 7].map((i) => `demo_order-1.0-${i}-py3-none-any.whl`)].map((name) => {
    const path = join(dir, name);
    writeFileSync(path, randomBytes(1024 * 1024));
    return path;
  });
  const ours = () => opened.filter((p) => paths.includes(p));
  const request = http.request;
  vi.spyOn(http, 'request').mockImplementation((...args: Parameters<typeof http.request>) => {
    const req = request(...args);
    // Registered before the client's own listeners: runs first.
    req.once('finish', () => (atSent ??= ours()));
    return req;
  });
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      // Holds the answer until the first file has been opened (or 3 s), then refuses the session.
      const started = Date.now();
      const wait = setInterval(() => {
        if (ours().length === 0 && Date.now() - started < 3000) return;
        clearInterval(wait);
        whileHeld = ours();
        res.writeHead(403, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: 'about:blank', title: 'Forbidden', status: 403, detail: 'not in this test' }));
      }, 5);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  root = `http://127.0.0.1:${(server.address() as AddressInfo).port}/upload/`;
});
afterAll(async () => {
  vi.restoreAllMocks();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

it('sends the session’s request before reading any file, hashes the first files while its answer is awaited, and stops when it is refused', async () => {
  const [release] = await collectReleases(paths);
  let atRefusal: number | undefined;
  await expect(
    uploadRelease({ root, authorization: 'Bearer test', release: release!, stage: true }).catch((err: unknown) => {
      atRefusal = opened.filter((p) => paths.includes(p)).length;
      throw err;
    }),
  ).rejects.toThrow(/not in this test/);
  expect(atSent).toEqual([]);
  expect(whileHeld).toContain(release!.dists[0]!.path);
  // Eight files would be hashed ahead; after the refusal no other one is opened.
  expect(atRefusal).toBeLessThan(paths.length);
  await new Promise((r) => setTimeout(r, 300));
  expect(opened.filter((p) => paths.includes(p))).toHaveLength(atRefusal!);
});
