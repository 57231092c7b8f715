/**
 * Three reference-index nodes (real processes) sharing one PostgreSQL database and one S3 bucket
 * (s3rver) behind the round-robin proxy, started by `startCluster` as `pnpm cluster` starts them
 * (issue #17, "Must show"):
 *
 * - every mechanism's full flow with consecutive requests answered by different nodes (each
 *   answer names its node in `X-PEP694-Node`; the proxy records them): http-post-bytes and
 *   multipart, whose upload lands on one node and whose completion on another (the staged bytes
 *   are in the bucket, re-read there); resumable-i8, whose creation, appends, offset retrievals
 *   and completion land on different nodes (the nodes share its upload directory, appends kept
 *   apart by PostgreSQL advisory locks: two appends on two nodes at once, one gets 409); tus,
 *   whose uploads are in the bucket and their locks in PostgreSQL, so its HEAD, each of its
 *   PATCHes and the completion go to the next node too;
 * - 24 concurrent creates of one release, spread over the nodes: one 201, 23 × 409 with the
 *   winner's Location (PEP 694 "Create a Publishing Session": a second session for the same
 *   release is refused while one is open);
 * - a node SIGKILLed in the middle of a tus PATCH sent through the proxy, and the client resuming
 *   from HEAD's offset and finishing through the two nodes left;
 * - a node SIGKILLed during a deferred verification (a 32 MiB wheel uploaded through one node,
 *   completed through another, which must re-read it: 202 and `processing`), and the client
 *   finishing through the node left once it took the work over (its lease ran out);
 * - a node SIGKILLed in the middle of a resumable append, and the client HEADing and finishing
 *   through another node, the published file intact;
 * - the release published first stays intact throughout: its files re-downloaded through every
 *   node still up and re-hashed after each step, its index page listing exactly them.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';
import { uploadMultipart } from '@pep694/mechanism-multipart/client';
import { uploadTus } from '@pep694/mechanism-tus/client';
import { uploadS3Presigned } from '@pep694/mechanism-s3-presigned/client';
import { rawRequest, tally } from '@pep694/server/testing';
import { advisoryKey } from '@pep694/store-postgres';
import { createTestDatabase, type TestDatabase } from '@pep694/store-postgres/testing';
import { startCluster, type Cluster } from './cluster.js';

const META = { 'api-version': '2.0' };
const JSON_TYPE = 'application/vnd.pypi.upload.v2+json';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A wheel the distribution validator accepts, with `payload` random bytes stored (not compressed) in it. */
function wheel(project: string, version: string, payload: number, tag = 'py3-none-any'): Promise<{ filename: string; bytes: Buffer }> {
  const dist = project.replace(/-/g, '_');
  const zip = new yazl.ZipFile();
  const add = (name: string, data: string | Buffer) => zip.addBuffer(Buffer.from(data), name, { compress: false });
  add(`${dist}/__init__.py`, '');
  add(`${dist}/data.bin`, randomBytes(payload));
  add(`${dist}-${version}.dist-info/METADATA`, `Metadata-Version: 2.1\nName: ${project}\nVersion: ${version}\n\n`);
  add(`${dist}-${version}.dist-info/WHEEL`, `Wheel-Version: 1.0\nGenerator: cluster-test\nRoot-Is-Purelib: true\nTag: ${tag}\n`);
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve({ filename: `${dist}-${version}-${tag}.whl`, bytes: Buffer.concat(chunks) }));
  });
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  node: string | null;
}

let cluster: Cluster;
let database: TestDatabase;
const auth = () => `Bearer ${cluster.token}`;

async function api(method: string, url: string, body?: unknown): Promise<Answer> {
  const res = await fetch(url, {
    method,
    headers: { authorization: auth(), accept: JSON_TYPE, ...(body ? { 'content-type': JSON_TYPE } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, node: res.headers.get('x-pep694-node') };
}

async function createSession(name: string, version: string) {
  const res = await api('POST', cluster.root, { meta: META, name, version });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { links: Record<string, string>; [k: string]: any };
}

async function createFile(session: { links: Record<string, string> }, file: { filename: string; bytes: Buffer }, mechanism: string) {
  const res = await api('POST', session.links.upload!, {
    meta: META,
    filename: file.filename,
    size: file.bytes.length,
    hashes: { sha256: sha256(file.bytes) },
    mechanism,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body as { links: Record<string, string>; mechanism: Record<string, unknown>; [k: string]: any };
}

/** Completes a file; a 202 (processing) is polled until the file settles. */
async function complete(file: { links: Record<string, string> }) {
  const res = await api('POST', file.links.complete!, { meta: META });
  expect([201, 202], JSON.stringify(res.body)).toContain(res.status);
  let status = res.body.status as string;
  for (let i = 0; status === 'processing' && i < 300; i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await api('GET', res.headers.get('location')!)).body.status as string;
  }
  expect(status).toBe('completed');
}

/** Publishes and waits until the session is `published` (a deferred publish answers 202). */
async function publish(session: { links: Record<string, string> }) {
  const res = await api('POST', session.links.publish!, { meta: META });
  expect([201, 202], JSON.stringify(res.body)).toContain(res.status);
  let status = res.body.status as string;
  for (let i = 0; status !== 'published' && i < 300; i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await api('GET', session.links.session!)).body.status as string;
  }
  expect(status).toBe('published');
}

/** The nodes that answered through the proxy since `from`, oldest first. */
const answeredBy = (from: number) => cluster.proxy.history.slice(from).map((h) => h.node);

/** No two consecutive answers came from the same node. */
function expectRotation(nodes: (string | undefined)[]) {
  expect(nodes.every((n) => n !== undefined)).toBe(true);
  for (let i = 1; i < nodes.length; i++) expect(nodes[i], `answers ${i - 1} and ${i}: ${nodes.join(' ')}`).not.toBe(nodes[i - 1]);
}

// ---- the resumable draft (interop version 8) by hand, one request at a time -----------------------

const V8 = { 'upload-draft-interop-version': '8' };
const alive = (n: { child: { exitCode: number | null; signalCode: string | null } }) =>
  n.child.exitCode === null && n.child.signalCode === null;

/** Upload creation with the first bytes (`Upload-Complete: ?0`); the upload resource's URL. */
async function createResumable(creationUrl: string, first: Uint8Array): Promise<string> {
  const res = await fetch(creationUrl, { method: 'POST', headers: { authorization: auth(), ...V8, 'upload-complete': '?0' }, body: first });
  expect(res.status, await res.clone().text()).toBe(201);
  expect(res.headers.get('upload-offset')).toBe(String(first.length));
  return new URL(res.headers.get('location')!, creationUrl).href;
}

/** An append at `offset` (PATCH, `application/partial-upload`). */
async function appendResumable(
  url: string,
  offset: number,
  body: Uint8Array | ReadableStream<Uint8Array>,
  last: boolean,
): Promise<{ status: number; text: string; node: string | null }> {
  const res = await fetch(url, {
    method: 'PATCH',
    headers: {
      authorization: auth(),
      ...V8,
      'content-type': 'application/partial-upload',
      'upload-offset': String(offset),
      'upload-complete': last ? '?1' : '?0',
    },
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  });
  return { status: res.status, text: await res.text(), node: res.headers.get('x-pep694-node') };
}

/** Offset retrieval (HEAD). */
async function offsetOf(url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: { authorization: auth(), ...V8 } });
  expect(res.status).toBe(204);
  return Number(res.headers.get('upload-offset'));
}

/** A request body whose bytes are held back until `send`. */
function heldBody() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  return {
    stream,
    send(bytes: Uint8Array, close = true) {
      controller.enqueue(bytes);
      if (close) controller.close();
    },
    fail() {
      controller.error(new Error('client gone'));
    },
  };
}

/**
 * Waits until some node holds the upload's lock (an append has started), seen in `pg_locks`
 * without taking the lock: a probe that took it, even for a moment, would make the append it
 * waits for find the lock held and answer 409. An append that ended first fails the wait with its
 * answer.
 */
async function waitForLockHeld(creationUrl: string, append: Promise<unknown>): Promise<void> {
  const fileId = decodeURIComponent(creationUrl.split('/files/')[1]!);
  // A single-bigint advisory key shows in pg_locks as its high and low halves (classid, objid), objsubid 1.
  const key = advisoryKey(`resumable-i8:${fileId}`);
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  let ended: unknown;
  void append.then((answer) => (ended = answer ?? 'ended'));
  try {
    for (let i = 0; i < 100 && ended === undefined; i++) {
      const held = await client.query(
        `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND ((classid::bigint << 32) | objid::bigint) = $1::bigint`,
        [key],
      );
      if (held.rowCount) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await client.end();
  }
  throw new Error(
    `no append took the lock; the append ended with ${ended === undefined ? 'nothing yet' : ended instanceof Error ? ended.message : JSON.stringify(ended)}`,
  );
}

/** Waits until the file's status (from any node: they read the shared disk) counts `atLeast` bytes received. */
async function waitForBytes(file: { links: Record<string, string> }, atLeast: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const s = await api('GET', file.links['file-upload-session']!);
    if (((s.body?.meta?._pep694?.['bytes-received'] as number | undefined) ?? 0) >= atLeast) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${atLeast} bytes arrived`);
}

/** The published file `f` of `project`, downloaded through the proxy, has `f`'s bytes. */
async function expectPublishedFile(project: string, f: { filename: string; bytes: Buffer }) {
  const page = await fetch(`${cluster.url}/simple/${project}/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  const listing = (await page.json()) as { files: { filename: string; url: string; hashes: { sha256: string } }[] };
  expect(listing.files.map((x) => [x.filename, x.hashes.sha256])).toEqual([[f.filename, sha256(f.bytes)]]);
  const res = await fetch(new URL(listing.files[0]!.url, `${cluster.url}/simple/${project}/`).href);
  expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(f.bytes));
}

// ---- the release published first, checked after every step -------------------------------------

let published: { project: string; files: Map<string, string> };

async function expectPublishedIntact() {
  for (const origin of [
    cluster.url,
    ...cluster.nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null).map((n) => n.origin),
  ]) {
    const page = await fetch(`${origin}/simple/${published.project}/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    expect(page.status).toBe(200);
    const listing = (await page.json()) as { files: { filename: string; url: string; hashes: { sha256: string } }[] };
    expect(new Map(listing.files.map((f) => [f.filename, f.hashes.sha256]))).toEqual(published.files);
    for (const f of listing.files) {
      const res = await fetch(new URL(f.url, `${origin}/simple/${published.project}/`).href.replace(cluster.url, origin));
      expect(res.status).toBe(200);
      expect(sha256(Buffer.from(await res.arrayBuffer())), `${f.filename} through ${origin}`).toBe(published.files.get(f.filename));
    }
  }
}

/** `project`'s index page, through the proxy, lists just `f`, and its download re-hashes to it. */
async function expectListedIntact(project: string, f: { filename: string; bytes: Buffer }) {
  const index = `${cluster.url}/simple/${project}/`;
  const page = await fetch(index, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  expect(page.status).toBe(200);
  const listing = (await page.json()) as { files: { filename: string; url: string; hashes: { sha256: string } }[] };
  expect(listing.files.map((x) => [x.filename, x.hashes.sha256])).toEqual([[f.filename, sha256(f.bytes)]]);
  const download = await fetch(new URL(listing.files[0]!.url, index));
  expect(download.status).toBe(200);
  expect(sha256(Buffer.from(await download.arrayBuffer())), `${f.filename} re-hashed`).toBe(sha256(f.bytes));
}

beforeAll(async () => {
  database = await createTestDatabase();
  cluster = await startCluster({
    nodes: 3,
    databaseUrl: database.url,
    env: {
      PEP694_LOG_LEVEL: 'silent',
      // Completions that must re-read more than 1 MiB verify in the background (202).
      PEP694_DEFER_VERIFICATION_ABOVE: String(1024 * 1024),
      // A dead node's work is taken over within about 5 + 1 s (defaults: 30 + 60 s).
      PEP694_WORK_LEASE_TTL: '5',
      PEP694_REAPER_INTERVAL: '1',
    },
  });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await database?.drop();
});

describe('three nodes behind a round-robin proxy, one PostgreSQL, one bucket', () => {
  it('http-post-bytes: each request of the flow on another node, the upload on one and its completion on the next', async () => {
    const from = cluster.proxy.history.length;
    const session = await createSession('cluster-demo', '1.0.0');
    const files = [await wheel('cluster-demo', '1.0.0', 4096)];
    for (const f of files) {
      const file = await createFile(session, f, 'http-post-bytes');
      await uploadHttpPostBytes({ instructions: file.mechanism, body: f.bytes, authorization: auth() });
      await complete(file);
    }
    await publish(session);
    const nodes = answeredBy(from);
    expectRotation(nodes);
    expect(new Set(nodes).size).toBe(3);
    published = { project: 'cluster-demo', files: new Map(files.map((f) => [f.filename, sha256(f.bytes)])) };
    await expectPublishedIntact();
  });

  it('multipart: the same, through the multipart form', async () => {
    const from = cluster.proxy.history.length;
    const session = await createSession('cluster-multipart', '1.0.0');
    const f = await wheel('cluster-multipart', '1.0.0', 4096);
    const file = await createFile(session, f, 'vnd-pep694-multipart');
    await uploadMultipart({
      instructions: file.mechanism,
      body: f.bytes,
      filename: f.filename,
      authorization: auth(),
    });
    await complete(file);
    await publish(session);
    expectRotation(answeredBy(from));
    await expectPublishedIntact();
  });

  it('resumable-i8: creation, appends, offset retrieval and completion each on another node (the nodes share the upload directory)', async () => {
    const from = cluster.proxy.history.length;
    const session = await createSession('cluster-resumable', '1.0.0');
    const f = await wheel('cluster-resumable', '1.0.0', 64 * 1024);
    const file = await createFile(session, f, 'vnd-pep694-resumable-i8');
    const mark = cluster.proxy.history.length;
    const third = Math.floor(f.bytes.length / 3);
    const location = await createResumable(file.mechanism.creation_url as string, f.bytes.subarray(0, third));
    // Round robin: the creation, each append and the HEAD land on different nodes. A node that
    // trusted what it had in memory would answer an offset another node has moved since.
    expect((await appendResumable(location, third, f.bytes.subarray(third, 2 * third), false)).status).toBe(204);
    expect(await offsetOf(location)).toBe(2 * third);
    expect((await appendResumable(location, 2 * third, f.bytes.subarray(2 * third, 2 * third + 1000), false)).status).toBe(204);
    expect(await offsetOf(location)).toBe(2 * third + 1000);
    expect((await appendResumable(location, 2 * third + 1000, f.bytes.subarray(2 * third + 1000), true)).status).toBe(201);
    await complete(file);
    const upload = cluster.proxy.history.slice(mark);
    expect(new Set(upload.map((h) => h.node)).size, JSON.stringify(upload)).toBe(3);
    await publish(session);
    expectRotation(answeredBy(from));
    await expectPublishedIntact();
    await expectPublishedFile('cluster-resumable', f);
  });

  it('resumable-i8: of two appends to one upload at one offset on two nodes, one writes and the other gets 409 upload-in-progress', async () => {
    const session = await createSession('cluster-resumable-race', '1.0.0');
    const f = await wheel('cluster-resumable-race', '1.0.0', 64 * 1024);
    const file = await createFile(session, f, 'vnd-pep694-resumable-i8');
    const half = Math.floor(f.bytes.length / 2);
    const location = await createResumable(file.mechanism.creation_url as string, f.bytes.subarray(0, half));
    const [nodeA, nodeB] = cluster.nodes.filter(alive);
    // A, through node A, sends 1000 bytes and holds the rest back; B, through node B, appends
    // the rest at the offset the disk now shows, which the offset check alone would accept: only
    // the lock stands between it and a second writer.
    const held = heldBody();
    const a = appendResumable(location.replace(cluster.url, nodeA!.origin), half, held.stream, true);
    held.send(f.bytes.subarray(half, half + 1000), false);
    await waitForBytes(file, half + 1000);
    const b = await appendResumable(location.replace(cluster.url, nodeB!.origin), half + 1000, f.bytes.subarray(half + 1000), true);
    expect(b.status, b.text).toBe(409);
    expect(JSON.parse(b.text).code).toBe('upload-in-progress');
    held.send(f.bytes.subarray(half + 1000));
    expect((await a).status).toBe(201);
    expect(await offsetOf(location)).toBe(f.bytes.length);
    await complete(file);
    await publish(session);
    await expectPublishedFile('cluster-resumable-race', f);
    tally('races run');
  });
  it('tus: every request of the flow on another node, the upload in several PATCHes each answered by the next node', async () => {
    // With PostgreSQL and the bucket shared, tus keeps the upload in the bucket (@tus/s3-store)
    // and its lock in PostgreSQL (examples/reference-index/src/tus-shared.ts): any node continues it.
    const from = cluster.proxy.history.length;
    const session = await createSession('cluster-tus', '1.0.0');
    const f = await wheel('cluster-tus', '1.0.0', 64 * 1024);
    const file = await createFile(session, f, 'vnd-pep694-tus');
    const uploadPath = new URL(file.mechanism.upload_url as string).pathname;
    const result = await uploadTus({ instructions: file.mechanism, body: f.bytes, authorization: auth(), chunkSize: 16 * 1024 });
    expect(result.resumedFrom).toBe(0);
    expect(result.retries).toBe(0);
    await complete(file);
    await publish(session);
    const nodes = answeredBy(from);
    expectRotation(nodes);
    expect(new Set(nodes).size).toBe(3);
    // HEAD and the PATCHes (five: 64 KiB and the wheel's zip overhead in 16 KiB chunks) went round too.
    const tus = cluster.proxy.history.slice(from).filter((h) => h.path.startsWith(uploadPath));
    expect(tus.map((h) => h.method)).toEqual(['HEAD', ...Array<string>(result.patches).fill('PATCH')]);
    expect(result.patches).toBeGreaterThanOrEqual(4);
    expect(new Set(tus.map((h) => h.node)).size).toBe(3);
    await expectListedIntact('cluster-tus', f);
    await expectPublishedIntact();
  });

  it('s3multipart-presigned: the parts PUT straight to the bucket, parts_url, the completion and the rest of the flow each on another node', async () => {
    // The mechanism keeps no state of its own (the upload is found by its object name in the
    // bucket), so any node answers parts_url and completes what another node's instructions began.
    // The reference index's part size is 16 MiB (S3 allows 5 MiB at least, the last part excepted):
    // 32 MiB of payload and the wheel's zip overhead make three parts, the last a few hundred bytes.
    const from = cluster.proxy.history.length;
    const s3From = cluster.s3.requests.length;
    const session = await createSession('cluster-presigned', '1.0.0');
    const f = await wheel('cluster-presigned', '1.0.0', 32 * 1024 * 1024);
    const file = await createFile(session, f, 'vnd-pep694-s3multipart-presigned');
    expect(file.mechanism.part_size).toBe(16 * 1024 * 1024);
    expect(file.mechanism.part_count).toBe(3);
    const result = await uploadS3Presigned({ instructions: file.mechanism, body: f.bytes, authorization: auth() });
    expect(result).toMatchObject({ size: f.bytes.length, resumedFrom: 0, puts: 3, retries: 0 });
    await complete(file);
    await publish(session);
    const nodes = answeredBy(from);
    expectRotation(nodes);
    expect(new Set(nodes).size).toBe(3);

    const history = cluster.proxy.history.slice(from);
    const createdOn = history.find((h) => h.method === 'POST' && h.path === new URL(session.links.upload!).pathname)?.node;
    const parts = history.filter((h) => h.path === new URL(file.mechanism.parts_url as string).pathname);
    const completion = history.find((h) => h.method === 'POST' && h.path === new URL(file.links.complete!).pathname);
    expect(createdOn).toBeDefined();
    // The client asked parts_url (through the proxy) once, on the node after the one that created the file session.
    expect(parts.map((h) => [h.method, h.status])).toEqual([['GET', 200]]);
    expect(parts[0]!.node).not.toBe(createdOn);
    // The completion on yet another node, which found the multipart upload in the bucket and
    // verifies by reading the object back: 202 (above PEP694_DEFER_VERIFICATION_ABOVE), then polled.
    expect(completion?.status).toBe(202);
    expect(completion?.node).not.toBe(createdOn);
    expect(completion?.node).not.toBe(parts[0]!.node);
    // The bytes went to the bucket, never through the proxy: three part PUTs in s3rver, none in the proxy.
    expect(history.filter((h) => h.method === 'PUT')).toEqual([]);
    const partPuts = cluster.s3.requests.slice(s3From).filter((r) => r.method === 'PUT' && /(^|&)partNumber(&|$)/.test(r.query));
    expect(partPuts).toHaveLength(3);
    expect(partPuts.reduce((n, r) => n + r.bytesIn, 0)).toBe(f.bytes.length);
    await expectListedIntact('cluster-presigned', f);
    await expectPublishedIntact();
  }, 90_000);

  it('24 concurrent creates of one release over the three nodes: one 201, 23 × 409 naming the winner', async () => {
    const answers = await Promise.all(
      Array.from({ length: 24 }, () => api('POST', cluster.root, { meta: META, name: 'cluster-race', version: '1.0' })),
    );
    const created = answers.filter((a) => a.status === 201);
    expect(created).toHaveLength(1);
    const winner = created[0]!.headers.get('location');
    const refused = answers.filter((a) => a.status === 409);
    expect(refused).toHaveLength(23);
    for (const r of refused) {
      expect(r.body.code).toBe('session-exists');
      expect(r.headers.get('location')).toBe(winner);
    }
    expect(new Set(answers.map((a) => a.node))).toEqual(new Set(['node-1', 'node-2', 'node-3']));
    await expectPublishedIntact();
    tally('races run');
  });

  it('a node SIGKILLed in the middle of a tus PATCH: the client HEADs through the proxy and finishes on the other nodes', async () => {
    const session = await createSession('cluster-tus-kill', '1.0.0');
    const f = await wheel('cluster-tus-kill', '1.0.0', 16 * 1024 * 1024);
    const file = await createFile(session, f, 'vnd-pep694-tus');
    const uploadUrl = file.mechanism.upload_url as string;
    // A PATCH of the whole file through the proxy that sends 10 MiB and stalls, as a client whose
    // node dies under it would see: which node took it, the proxy's count of forwarded requests says.
    const before = new Map(cluster.proxy.forwarded);
    const held = rawRequest('PATCH', uploadUrl, {
      headers: {
        'Tus-Resumable': '1.0.0',
        Authorization: auth(),
        'Content-Type': 'application/offset+octet-stream',
        'Upload-Offset': '0',
      },
      chunks: [f.bytes.subarray(0, 10 * 1024 * 1024)],
      contentLength: f.bytes.length,
      hold: true,
    });
    // (A node that answered at once, as a node without the upload would, ends the wait too.)
    await Promise.race([held.written, held.response.catch(() => {})]);
    const victim = [...cluster.proxy.forwarded].find(([name, n]) => n > (before.get(name) ?? 0))?.[0];
    expect(victim).toBeDefined();
    await new Promise((r) => setTimeout(r, 1500)); // the first 8 MiB part on its way to the bucket
    await cluster.kill(victim!);
    await held.response.then(
      (r) => expect(r.status, 'the proxy answers for the dead node').toBe(502),
      () => {}, // or the connection is cut
    );
    await cluster.proxy.checkHealth();
    expect(cluster.proxy.backends.find((b) => b.name === victim)?.up).toBe(false);

    // The client resumes from the offset the bucket holds, in 4 MiB PATCHes through the proxy.
    const from = cluster.proxy.history.length;
    const result = await uploadTus({ instructions: file.mechanism, body: f.bytes, authorization: auth(), chunkSize: 4 * 1024 * 1024 });
    expect(result.resumedFrom).toBeLessThanOrEqual(10 * 1024 * 1024);
    expect(result.patches).toBeGreaterThanOrEqual(2);
    // The completion re-reads the 16 MiB (no node saw all the bytes in order): 202, then completed.
    await complete(file);
    await publish(session);
    const nodes = answeredBy(from);
    expectRotation(nodes);
    expect(new Set(nodes).size, 'the two nodes left').toBe(2);
    expect(nodes).not.toContain(victim);
    await expectListedIntact('cluster-tus-kill', f);
    await expectPublishedIntact();
    tally('kill points survived');
    // Back into the rotation, so that the next kill still leaves two nodes.
    await cluster.restart(victim!);
  }, 90_000);

  it('a node SIGKILLed during a deferred verification: another node takes the work over and the client finishes through the others', async () => {
    const session = await createSession('cluster-big', '1.0.0');
    const f = await wheel('cluster-big', '1.0.0', 32 * 1024 * 1024);
    const file = await createFile(session, f, 'http-post-bytes');
    await uploadHttpPostBytes({ instructions: file.mechanism, body: f.bytes, authorization: auth() });
    const uploadedOn = cluster.proxy.history.at(-1)!.node;
    // The completion lands on the next node, which has no digests of these bytes: it must re-read
    // 32 MiB from the bucket, so it answers 202 and verifies in the background, under its lease.
    const res = await api('POST', file.links.complete!, { meta: META });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.node).not.toBe(uploadedOn);
    await cluster.kill(res.node!);
    const status = await api('GET', res.headers.get('location')!);
    expect(status.body.status, 'killed before its verification ended').toBe('processing');
    expect(status.node).not.toBe(res.node);

    // Once the lease runs out (5 s), a recovery pass of a live node (every 1 s) re-verifies the
    // bytes. 25 s: with the default lease (30 s) this would fail.
    const killedAt = Date.now();
    const deadline = killedAt + 25_000;
    let now = status;
    while (now.body.status === 'processing' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      now = await api('GET', res.headers.get('location')!);
    }
    expect(now.body.status, `${(Date.now() - killedAt) / 1000} s after the kill`).toBe('completed');
    await publish(session);
    const page = await fetch(`${cluster.url}/simple/cluster-big/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    const listing = (await page.json()) as { files: { filename: string; hashes: { sha256: string } }[] };
    expect(listing.files.map((x) => [x.filename, x.hashes.sha256])).toEqual([[f.filename, sha256(f.bytes)]]);
    expect(cluster.proxy.backends.find((b) => b.name === res.node)?.up).toBe(false);
    await expectPublishedIntact();
    tally('kill points survived');
    await cluster.restart(res.node!);
  }, 90_000);

  it('resumable-i8: a node SIGKILLed in the middle of an append; the client HEADs and finishes through another node, the file intact', async () => {
    const session = await createSession('cluster-resumable-kill', '1.0.0');
    const f = await wheel('cluster-resumable-kill', '1.0.0', 768 * 1024);
    const file = await createFile(session, f, 'vnd-pep694-resumable-i8');
    const first = 64 * 1024;
    const location = await createResumable(file.mechanism.creation_url as string, f.bytes.subarray(0, first));
    const before = new Map(cluster.proxy.forwarded);
    const held = heldBody();
    const append = appendResumable(location, first, held.stream, true).catch((err: unknown) => err);
    held.send(f.bytes.subarray(first, first + 256 * 1024), false);
    await waitForLockHeld(file.mechanism.creation_url as string, append);
    const appender = [...cluster.proxy.forwarded].find(([name, n]) => n > (before.get(name) ?? 0))![0];
    // The bytes sent so far are on the shared disk (any node's status reads them there).
    await waitForBytes(file, first + 256 * 1024);
    await cluster.kill(appender);
    held.fail();
    await append;
    // The balancer's health check takes the dead node out of the rotation (a request with a body
    // is not retried on another node: a real client would get a 502 and retry).
    await cluster.proxy.checkHealth();

    // Its PostgreSQL session died with it, and its lock: another node answers the offset (the
    // bytes it had written, contiguous) and takes the rest.
    const head = await fetch(location, { method: 'HEAD', headers: { authorization: auth(), ...V8 } });
    expect(head.status).toBe(204);
    expect(head.headers.get('x-pep694-node')).not.toBe(appender);
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBeGreaterThanOrEqual(first);
    expect(offset).toBeLessThanOrEqual(first + 256 * 1024);
    const rest = await appendResumable(location, offset, f.bytes.subarray(offset), true);
    expect(rest.status, rest.text).toBe(201);
    expect(rest.node).not.toBe(appender);
    await complete(file);
    await publish(session);
    await expectPublishedFile('cluster-resumable-kill', f);
    await expectPublishedIntact();
    tally('kill points survived');
  }, 90_000);
});
