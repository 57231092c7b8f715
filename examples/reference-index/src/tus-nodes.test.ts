/**
 * tus across nodes (issue #17): two reference index processes, A and B, share one PostgreSQL
 * database (`PEP694_DATABASE_URL`) and one bucket (`PEP694_BLOBS=s3://…`, s3rver on loopback), so
 * their tus uploads live in the bucket (`@tus/s3-store`) and their tus locks in PostgreSQL
 * (`PostgresTusLocker`). Real processes, real HTTP on loopback, nothing mocked.
 *
 * - An upload started on A continues with PATCHes on B and completes there: B never saw the first
 *   bytes, so the digests come from reading the bytes once (a wrong declared digest is caught),
 *   and the published file downloads intact.
 * - PATCHes to one upload on A and B at once never both append: B's request asks A (NOTIFY) to
 *   let go, A's PATCH is stopped (its bytes kept), and only then is B's request served, at an
 *   offset it no longer matches (409); the client resumes from HEAD and the file is intact.
 * - A is SIGKILLed in the middle of a PATCH: the client HEADs B, continues there, and completes.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { uploadTus } from '@pep694/mechanism-tus/client';
import { rawRequest } from '@pep694/server/testing';
import { createTestDatabase, type TestDatabase } from '@pep694/store-postgres/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReferenceIndex } from './test-support.js';

const TOKEN = 'tus-nodes-token-0123456789';
const AUTH = `Bearer ${TOKEN}`;
const META = { 'api-version': '2.0' };
const TUS = 'vnd-pep694-tus';
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let s3: TestS3;
let db: TestDatabase;
let env: Record<string, string>;
const dirs: string[] = [];
const children: ChildProcess[] = [];
let nodeA: string;
let nodeB: string;

async function startNode(): Promise<{ child: ChildProcess; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pep694-tus-nodes-'));
  dirs.push(dir);
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, JSON.stringify({ tokens: [{ token: TOKEN, principal: 'ci', projects: ['*'] }] }));
  const node = await startReferenceIndex(dir, tokens, env);
  children.push(node.child);
  return node;
}

beforeAll(async () => {
  s3 = await startS3rver();
  db = await createTestDatabase();
  const blobs = await s3.blobsEnv('idx/');
  // Placeholder bytes, not archives: this is about where the bytes go, not what they are.
  env = { ...blobs.env, PEP694_DATABASE_URL: db.url, PEP694_VALIDATE_ARTIFACTS: '0' };
  [nodeA, nodeB] = (await Promise.all([startNode(), startNode()])).map((n) => n.url) as [string, string];
}, 120_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await db?.drop();
  await s3?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { authorization: AUTH, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    ...(body !== undefined && { body: JSON.stringify({ meta: META, ...(body as object) }) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The same URL on another node (every node serves every session; links carry the origin asked). */
const on = (node: string, url: string) => {
  const u = new URL(url);
  const n = new URL(node);
  u.protocol = n.protocol;
  u.host = n.host;
  return u.href;
};

interface TusFile {
  links: Record<string, string>;
  mechanism: { upload_url: string; upload_length: number; [k: string]: unknown };
}

/** A publishing session of `project` 1.0 on `node`, and a tus file upload session of `bytes` (declaring `digest`). */
async function tusFile(node: string, project: string, bytes: Buffer, digest = sha256(bytes)) {
  const session = await api('POST', node, { name: project, version: '1.0' });
  expect(session.status, JSON.stringify(session.body)).toBe(201);
  const file = await api('POST', session.body.links.upload, {
    filename: `${project.replace(/-/g, '_')}-1.0-py3-none-any.whl`,
    size: bytes.length,
    hashes: { sha256: digest },
    mechanism: TUS,
  });
  expect(file.status, JSON.stringify(file.body)).toBe(202);
  return { session: session.body as { links: Record<string, string> }, file: file.body as TusFile };
}

const tusHeaders = (extra: Record<string, string> = {}) => ({ 'Tus-Resumable': '1.0.0', Authorization: AUTH, ...extra });

/** A PATCH of `chunks` at `offset` (`contentLength`, and `hold` to leave it open mid-body). */
const patch = (url: string, offset: number, chunks: Buffer[], opts: { contentLength?: number; hold?: boolean } = {}) =>
  rawRequest('PATCH', url, {
    headers: tusHeaders({ 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) }),
    chunks,
    ...opts,
  });

const headOffset = async (url: string) => {
  const res = await rawRequest('HEAD', url, { headers: tusHeaders() }).response;
  expect(res.status).toBe(200);
  return Number(res.headers['upload-offset']);
};

/** Publishes the session and downloads the file from `node`'s simple index: its sha256. */
async function publishAndDownload(node: string, project: string, session: { links: Record<string, string> }): Promise<string> {
  const published = await api('POST', on(node, session.links['publish']!), {});
  expect(published.status, JSON.stringify(published.body)).toBe(201);
  const simple = new URL(`/simple/${project}/`, node);
  const page = await fetch(simple, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  expect(page.status).toBe(200);
  const [listed] = ((await page.json()) as { files: { url: string }[] }).files;
  const download = await fetch(new URL(listed!.url, simple));
  expect(download.status).toBe(200);
  return sha256(Buffer.from(await download.arrayBuffer()));
}

describe('tus across nodes sharing PostgreSQL and a bucket', () => {
  it(
    'an upload started on node A continues on node B and completes there, verified by reading the bytes',
    { timeout: 120_000 },
    async () => {
      const bytes = randomBytes(12 * MiB + 4321);
      const { session, file } = await tusFile(nodeA, 'across-nodes', bytes);
      const urlA = file.mechanism.upload_url;
      const urlB = on(nodeB, urlA);
      // 3 MiB on A: less than S3's smallest part, so it waits in the bucket as the upload's tail object.
      expect((await patch(urlA, 0, [bytes.subarray(0, 3 * MiB)]).response).status).toBe(204);
      expect(await headOffset(urlB), 'node B sees what node A stored').toBe(3 * MiB);
      // The rest on B, in two PATCHes.
      expect((await patch(urlB, 3 * MiB, [bytes.subarray(3 * MiB, 9 * MiB)]).response).status).toBe(204);
      expect((await patch(urlB, 9 * MiB, [bytes.subarray(9 * MiB)]).response).status).toBe(204);
      expect(await headOffset(urlA)).toBe(bytes.length);

      const completed = await api('POST', on(nodeB, file.links['complete']!), {});
      expect(completed.status, JSON.stringify(completed.body)).toBe(201);
      expect(await publishAndDownload(nodeA, 'across-nodes', session), 'the published file is intact').toBe(sha256(bytes));
    },
  );

  it('a wrong declared digest is caught when the upload crossed nodes (no node hashed it in order)', { timeout: 120_000 }, async () => {
    const bytes = randomBytes(6 * MiB);
    const { file } = await tusFile(nodeA, 'across-nodes-wrong', bytes, sha256(Buffer.from('something else')));
    const urlA = file.mechanism.upload_url;
    expect((await patch(urlA, 0, [bytes.subarray(0, MiB)]).response).status).toBe(204);
    expect((await patch(on(nodeB, urlA), MiB, [bytes.subarray(MiB)]).response).status).toBe(204);
    const completed = await api('POST', on(nodeB, file.links['complete']!), {});
    expect(completed.status, JSON.stringify(completed.body)).toBe(422);
    expect(completed.body.type).toMatch(/hash-mismatch/);
  });

  it(
    'PATCHes to one upload on A and B at once never both append: A is made to let go before B is served',
    { timeout: 120_000 },
    async () => {
      const bytes = randomBytes(16 * MiB);
      const { session, file } = await tusFile(nodeA, 'concurrent-nodes', bytes);
      const urlA = file.mechanism.upload_url;
      const urlB = on(nodeB, urlA);

      // A's PATCH sends 6 MiB of the whole and stalls: it holds the upload's tus lock.
      const onA = patch(urlA, 0, [bytes.subarray(0, 6 * MiB)], { contentLength: bytes.length, hold: true });
      let aEnded = 0;
      const aDone = onA.response.then(
        (r) => ((aEnded = Date.now()), r),
        () => ((aEnded = Date.now()), undefined), // the connection cut
      );
      await onA.written;
      await sleep(1000);

      // B's PATCH of the whole file from 0, while A's is running.
      const onB = await patch(urlB, 0, [bytes]).response;
      const bAnswered = Date.now();
      const aAnswer = await aDone;
      expect(aEnded, "node A's PATCH ended before node B's was served").toBeGreaterThan(0);
      expect(aEnded).toBeLessThanOrEqual(bAnswered);
      const offset = await headOffset(urlB);
      // A's PATCH was stopped short (tus's handover answers it with the offset it stored, or the connection is cut).
      if (aAnswer?.status === 204) expect(Number(aAnswer.headers['upload-offset'])).toBe(offset);
      else if (aAnswer) expect(aAnswer.status).toBeGreaterThanOrEqual(400);
      // A's bytes were kept, so B's offset 0 is stale: 409 (or, had A stored none, B appended from 0).
      if (offset > 0) {
        expect(onB.status, onB.body).toBe(409);
        expect(offset, 'what node A had received, and nothing of B').toBeLessThanOrEqual(6 * MiB);
      } else expect(onB.status).toBe(204);

      // The client resumes from HEAD, through B, and finishes.
      await uploadTus({ instructions: { ...file.mechanism, upload_url: urlB }, body: bytes, authorization: AUTH });
      const completed = await api('POST', on(nodeA, file.links['complete']!), {});
      expect(completed.status, JSON.stringify(completed.body)).toBe(201);
      expect(await publishAndDownload(nodeB, 'concurrent-nodes', session)).toBe(sha256(bytes));
    },
  );

  it(
    'node A SIGKILLed in the middle of a PATCH: the client HEADs node B, continues there and completes',
    { timeout: 120_000 },
    async () => {
      const victim = await startNode();
      const bytes = randomBytes(16 * MiB + 777);
      const { session, file } = await tusFile(victim.url, 'killed-node', bytes);
      const urlA = file.mechanism.upload_url;
      const urlB = on(nodeB, urlA);

      const onA = patch(urlA, 0, [bytes.subarray(0, 10 * MiB)], { contentLength: bytes.length, hold: true });
      onA.response.catch(() => {});
      await onA.written;
      await sleep(1500); // the first 8 MiB part on its way to the bucket
      victim.child.kill('SIGKILL');
      await new Promise((r) => victim.child.once('exit', r));

      const offset = await headOffset(urlB);
      expect(offset).toBeLessThanOrEqual(10 * MiB);
      const result = await uploadTus({ instructions: { ...file.mechanism, upload_url: urlB }, body: bytes, authorization: AUTH });
      expect(result.resumedFrom).toBe(offset);
      const completed = await api('POST', on(nodeB, file.links['complete']!), {});
      expect(completed.status, JSON.stringify(completed.body)).toBe(201);
      expect(await publishAndDownload(nodeB, 'killed-node', session)).toBe(sha256(bytes));
    },
  );
});
